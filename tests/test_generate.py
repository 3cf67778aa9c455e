"""`emohead generate` end to end with tiny untrained models, and its one-line errors on bad inputs."""

from __future__ import annotations

import logging
import re
import subprocess
import wave
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from tiny_models import make_models

from emohead import cli
from emohead.errors import InputError
from emohead.generate import generate
from emohead.media import ffmpeg_exe, probe

CROP_SIZE = 64


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return make_models(tmp_path_factory.mktemp("models"), CROP_SIZE)


def _write_wav(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def _codecs(path: Path) -> tuple[str, str]:
    text = subprocess.run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], capture_output=True, text=True).stderr
    video = re.search(r"Video: (\w+)", text)
    audio = re.search(r"Audio: (\w+)", text)
    return (video.group(1) if video else ""), (audio.group(1) if audio else "")


def test_generate_makes_a_playable_video(shared_clips, models, tmp_path, capsys):
    speech, face = shared_clips / "sadtalker_speech.wav", shared_clips / "sadtalker_face_happy.png"
    out = tmp_path / "talking.mp4"
    code = cli.main(["generate", "--audio", str(speech), "--image", str(face), "--out", str(out),
                     "--models", str(models)])
    assert code == 0
    assert re.search(r"frames/s", capsys.readouterr().out)
    info, audio_info = probe(out), probe(speech)
    assert info.has_video and info.has_audio
    assert _codecs(out) == ("h264", "aac")
    assert info.fps == 25
    assert (info.width, info.height) == (CROP_SIZE, CROP_SIZE)
    assert abs(info.duration_s - audio_info.duration_s) <= 0.1
    frames = cv2.VideoCapture(str(out))
    assert int(frames.get(cv2.CAP_PROP_FRAME_COUNT)) == round(audio_info.duration_s * 25)
    frames.release()


def test_silent_audio_warns_and_still_renders(shared_clips, models, tmp_path, caplog):
    silence = _write_wav(tmp_path / "silence.wav", np.zeros(8000))
    out = tmp_path / "silent.mp4"
    with caplog.at_level(logging.WARNING):
        result = generate(silence, shared_clips / "sadtalker_face_happy.png", out, models_dir=models)
    assert "silent" in caplog.text
    assert result.n_frames == 12 and out.is_file()  # 0.5 s at 25 fps


def _error(tmp_path, models, audio, image, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        generate(audio, image, tmp_path / "out.mp4", models_dir=models, **kwargs)
    assert not (tmp_path / "out.mp4").exists()
    message = str(info.value)
    assert "\n" not in message
    return message


def test_blank_image_has_no_face(tmp_path, models):
    speech = _write_wav(tmp_path / "speech.wav", np.random.default_rng(0).normal(0, 0.1, 16000))
    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((256, 256, 3), 128, np.uint8))
    message = _error(tmp_path, models, speech, blank)
    assert str(blank) in message and "no face" in message


def test_empty_audio_is_named(tmp_path, models, shared_clips):
    empty = _write_wav(tmp_path / "empty.wav", np.zeros(0))
    message = _error(tmp_path, models, empty, shared_clips / "sadtalker_face_happy.png")
    assert str(empty) in message


def test_unreadable_audio_is_named(tmp_path, models, shared_clips):
    garbage = tmp_path / "speech.mp3"
    garbage.write_bytes(b"\x00\x01 not audio" * 100)
    message = _error(tmp_path, models, garbage, shared_clips / "sadtalker_face_happy.png")
    assert str(garbage) in message


def test_other_frame_rates_are_rejected(tmp_path, models, shared_clips):
    message = _error(tmp_path, models, shared_clips / "sadtalker_speech.wav",
                     shared_clips / "sadtalker_face_happy.png", fps=30)
    assert "--fps 30" in message and "25" in message


def test_cli_reports_errors_in_one_line(tmp_path, models, capsys):
    not_image = tmp_path / "x.png"
    not_image.write_text("no")
    speech = _write_wav(tmp_path / "speech.wav", np.random.default_rng(0).normal(0, 0.1, 16000))
    code = cli.main(["generate", "--audio", str(speech), "--image", str(not_image), "--out",
                     str(tmp_path / "o.mp4"), "--models", str(models)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == [f"emohead generate: error: {not_image}: not a readable image (PNG, JPEG, ... expected)"]


def test_several_faces_warn_and_take_the_largest(shared_clips, models, tmp_path, caplog):
    face = cv2.imread(str(shared_clips / "sadtalker_face_happy.png"))
    small = cv2.resize(face, (160, 160))
    pair = np.zeros((256, 512, 3), np.uint8)
    pair[:, :256], pair[48:208, 300:460] = face, small
    cv2.imwrite(str(tmp_path / "two.png"), pair)
    speech = _write_wav(tmp_path / "speech.wav", np.random.default_rng(0).normal(0, 0.1, 4000))
    with caplog.at_level(logging.WARNING):
        generate(speech, tmp_path / "two.png", tmp_path / "two.mp4", models_dir=models)
    assert "2 faces found; animating the largest" in caplog.text
