"""The metrics on hand-made inputs whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from emohead import metrics
from emohead.features.schema import MOUTH


def _face(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(20, 100, size=(68, 2))


def test_identical_landmarks_have_zero_distance():
    face = _face()
    assert metrics.mouth_lmd(face, face) == 0.0
    assert metrics.face_lmd(face, face) == 0.0


def test_uniform_translation_is_removed_by_centring():
    face = _face()
    moved = face + np.array([7.5, -3.0])
    assert metrics.mouth_lmd(face, moved) == pytest.approx(0.0, abs=1e-12)
    assert metrics.face_lmd(face, moved) == pytest.approx(0.0, abs=1e-12)


def test_mouth_opening_gives_the_known_distance():
    # Half the mouth points (10 of 20) 4 px down, the rest unchanged: the mouth centroid moves 2 px down,
    # so every mouth point ends 2 px from its centred original -> M-LMD exactly 2.
    face = _face()
    fake = face.copy()
    mouth = np.arange(68)[MOUTH]
    lower = mouth[:10]  # any 10 of the 20 mouth points
    fake[lower, 1] += 4.0
    assert metrics.mouth_lmd(face, fake) == pytest.approx(2.0)
    # Over all 68 points the centroid moves 40/68 px: 10 points at 4 - 40/68, 58 points at 40/68.
    shift = 40 / 68
    expected = (10 * (4 - shift) + 58 * shift) / 68
    assert metrics.face_lmd(face, fake) == pytest.approx(expected)


def test_landmark_distance_averages_over_frames():
    real = np.stack([_face(1), _face(2)])
    fake = real.copy()
    fake[0, 50, 0] += 20.0  # one mouth point off by 20 px in frame 0 only
    one = metrics.mouth_lmd(real[0], fake[0])
    assert one > 0
    assert metrics.mouth_lmd(real, fake) == pytest.approx(one / 2)


def test_identical_frames_give_ssim_one_and_capped_psnr():
    frame = np.random.default_rng(0).integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert metrics.ssim(frame, frame) == pytest.approx(1.0)
    assert metrics.psnr(frame, frame) == metrics.PSNR_CAP_DB


def test_psnr_of_a_known_mse():
    real = np.full((16, 16, 3), 100, dtype=np.uint8)
    fake = real + np.uint8(10)  # MSE 100
    assert metrics.psnr(real, fake) == pytest.approx(10 * np.log10(255**2 / 100))


def test_psnr_has_no_uint8_wraparound():
    # 0 - 255 in uint8 would wrap to 1 (MSE 1, ~48 dB); in float the MSE is 255^2 -> exactly 0 dB.
    real = np.zeros((8, 8, 3), dtype=np.uint8)
    fake = np.full((8, 8, 3), 255, dtype=np.uint8)
    assert metrics.psnr(real, fake) == pytest.approx(0.0)
    assert metrics.psnr(fake, real) == pytest.approx(0.0)


def test_ssim_drops_for_different_frames():
    rng = np.random.default_rng(1)
    real = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    fake = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
    assert metrics.ssim(real, fake) < 0.2
