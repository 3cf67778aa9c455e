"""The generated MEAD-layout dataset: layout, formats, determinism, and that the data carries the signal
(dlib finds the face, the mouth follows the voice, emotions move the face)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from emohead.config import from_dict
from emohead.data.layout import ClipKey
from emohead.data.sample import SampleConfig, clip_keys, generate_dataset, perform
from emohead.errors import ConfigError
from emohead.face_models import dlib_models
from emohead.media import load_audio, probe, read_frames

TINY = SampleConfig(seed=3, actors=("W902",), sentences=2, duration_s=1.6, workers=2)
EMOTIONS = ("neutral", "happy", "surprised")
LEVELS = (1, 3)


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> tuple[Path, list[ClipKey]]:
    root = tmp_path_factory.mktemp("sample")
    return root, generate_dataset(TINY, root, EMOTIONS, LEVELS, max_sentences=1)


@pytest.fixture(scope="module")
def dlib_tracks(tiny_dataset) -> dict[str, dict[str, np.ndarray]]:
    """Per clip: faces found per frame, dlib's 68 landmarks (NaN where none), audio RMS per frame."""
    root, keys = tiny_dataset
    detector, predictor = dlib_models()
    tracks = {}
    for key in keys:
        frames = read_frames(root / key.video_relpath())
        audio = load_audio(root / key.audio_relpath(".m4a"), TINY.sample_rate_hz)
        hop = TINY.sample_rate_hz // TINY.fps
        rms = np.array([np.sqrt(np.mean(audio[i * hop : (i + 1) * hop] ** 2)) for i in range(len(frames))])
        counts, points = [], np.full((len(frames), 68, 2), np.nan)
        for i, frame in enumerate(frames):
            faces = detector(frame, 0)
            counts.append(len(faces))
            if faces:
                shape = predictor(frame, faces[0])
                points[i] = [[p.x, p.y] for p in shape.parts()]
        tracks[key.clip_id] = {"faces": np.array(counts), "points": points, "rms": rms}
    return tracks


def test_files_sit_at_mead_paths_with_mead_formats(tiny_dataset):
    root, keys = tiny_dataset
    expected = [("neutral", 1), ("happy", 1), ("happy", 3), ("surprised", 1), ("surprised", 3)]
    assert keys == [ClipKey("W902", emotion, level, 1) for emotion, level in expected]
    for key in keys:
        video = probe(root / key.video_relpath("front"))
        assert (video.fps, video.width, video.height) == (30.0, TINY.width, TINY.height)
        assert video.has_audio  # MEAD's mp4s carry the audio track too
        audio = probe(root / "W902" / "audio" / key.emotion / f"level_{key.level}" / "001.m4a")  # MEAD's path
        assert (audio.has_video, audio.sample_rate_hz, audio.channels) == (False, 48000, 2)
        assert abs(audio.duration_s - video.duration_s) < 0.1
    assert not list(root.rglob("*.tmp*"))  # the temporary wav is gone


def test_wav_format_and_actor_subset(tmp_path):
    config = replace(TINY, actors=("M901", "W902"), audio_format="wav", width=256, height=192, workers=1)
    keys = generate_dataset(config, tmp_path, ["sad"], [1], max_sentences=1, actors=["M901"])
    assert keys == [ClipKey("M901", "sad", 1, 1)]
    audio = probe(tmp_path / "M901/audio/sad/level_1/001.wav")
    assert (audio.sample_rate_hz, audio.channels) == (48000, 2)
    assert probe(tmp_path / keys[0].video_relpath()).width == 256
    assert not (tmp_path / "W902").exists()


def test_clip_selection_follows_mead():
    keys = clip_keys(SampleConfig(), ["neutral", "angry"], [1, 2, 3])
    assert len(keys) == 2 * (1 + 3) * 3  # neutral has level 1 only
    assert len(clip_keys(SampleConfig(), ["angry"], [2], max_sentences=1)) == 2
    assert {k.actor for k in clip_keys(SampleConfig(), ["angry"], [1], actors=["W902"])} == {"W902"}


@pytest.mark.parametrize("actors", [["X901"], ["M9011"], ["m901"]])
def test_bad_actor_ids_are_config_errors(actors, tmp_path):
    with pytest.raises(ConfigError, match="must match"):
        from_dict(SampleConfig, {"actors": actors}, "sample")
    with pytest.raises(ConfigError, match="must match"):
        generate_dataset(TINY, tmp_path, ["happy"], [1], actors=actors)


def test_unknown_or_wrong_keys_are_config_errors():
    with pytest.raises(ConfigError, match="unknown key 'sentence'"):
        from_dict(SampleConfig, {"sentence": 3}, "sample")
    with pytest.raises(ConfigError, match="audio_format"):
        from_dict(SampleConfig, {"audio_format": "mp3"}, "sample")
    with pytest.raises(ConfigError, match="even"):
        from_dict(SampleConfig, {"width": 321}, "sample")


def test_same_seed_same_performance_other_seed_differs():
    key = ClipKey("M901", "angry", 2, 1)
    first, again = perform(TINY, key), perform(TINY, key)
    np.testing.assert_array_equal(first.audio, again.audio)
    np.testing.assert_array_equal(first.landmarks, again.landmarks)
    other = perform(replace(TINY, seed=4), key)
    assert first.audio.shape != other.audio.shape or not np.array_equal(first.audio, other.audio)
    sentence_two = perform(TINY, replace(key, sentence=2))
    assert [s.vowel for s in sentence_two.syllables] != [s.vowel for s in first.syllables]


def test_performance_couples_audio_and_mouth():
    perf = perform(TINY, ClipKey("W902", "neutral", 1, 1))
    hop = TINY.sample_rate_hz // TINY.fps
    assert len(perf.audio) == perf.n_frames * hop
    rms = np.sqrt(np.mean(perf.audio[: perf.n_frames * hop].reshape(perf.n_frames, hop) ** 2, axis=1))
    gap = (perf.landmarks[:, [65, 66, 67], 1] - perf.landmarks[:, [63, 62, 61], 1]).mean(axis=1)
    assert np.corrcoef(gap, rms)[0, 1] > 0.8
    assert gap[0] < 0.02 and gap.max() > 0.15  # starts closed, opens to speak


def test_dlib_finds_exactly_one_face_in_nearly_every_frame(dlib_tracks):
    faces = np.concatenate([t["faces"] for t in dlib_tracks.values()])
    assert np.mean(faces == 1) >= 0.99


def test_dlib_mouth_opening_follows_the_audio(dlib_tracks):
    for clip_id, track in dlib_tracks.items():
        points, found = track["points"], track["faces"] > 0
        gap = (points[:, [65, 66, 67], 1] - points[:, [63, 62, 61], 1]).mean(axis=1)
        r = np.corrcoef(gap[found], track["rms"][found])[0, 1]
        assert r >= 0.5, f"{clip_id}: inner-lip gap vs audio RMS Pearson r = {r:.2f}"


def _offsets(points: np.ndarray) -> dict[str, float]:
    """Brow and mouth-corner height above the nose tip, in interocular distances (mean over the clip)."""
    interocular = np.linalg.norm(points[:, 42:48].mean(1) - points[:, 36:42].mean(1), axis=1)
    nose_tip = points[:, 30, 1]
    return {
        "brow": float(np.nanmean((nose_tip - points[:, 17:27, 1].mean(1)) / interocular)),
        "corner": float(np.nanmean((nose_tip - points[:, [48, 54], 1].mean(1)) / interocular)),
    }


def test_emotions_move_the_face_as_designed(dlib_tracks):
    offsets = {ClipKey.from_clip_id(cid).emotion: _offsets(t["points"])
               for cid, t in dlib_tracks.items() if cid.endswith(("_neutral_1_001", "_3_001"))}
    neutral, happy, surprised = offsets["neutral"], offsets["happy"], offsets["surprised"]
    assert happy["corner"] - neutral["corner"] > 0.04  # smile lifts the mouth corners
    assert surprised["brow"] - neutral["brow"] > 0.06  # surprise raises the brows
    assert abs(happy["brow"] - neutral["brow"]) < surprised["brow"] - neutral["brow"]
