"""The resample stage: 25 fps / 16 kHz mono outputs, per-clip failures counted, nothing half-written."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emohead import paths
from emohead.data.resample import load_config, run
from emohead.errors import ConfigError, TooManyFailuresError
from emohead.media import ffmpeg_exe, probe, write_video


def _make_clip(folder: Path, name: str, seconds: float = 1.0, fps: int = 30, rate: int = 48000) -> tuple[Path, Path]:
    frames = np.zeros((int(seconds * fps), 48, 64, 3), np.uint8)
    frames[:, :, :, 1] = np.linspace(0, 255, len(frames), dtype=np.uint8)[:, None, None]
    video = folder / f"{name}.mp4"
    write_video(video, frames, fps)
    audio = folder / f"{name}.m4a"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=220:duration={seconds}",
         "-ac", "2", "-ar", str(rate), "-c:a", "aac", str(audio)],
        check=True,
    )
    return video, audio


def _write_raw(tmp_path: Path, clips: dict[str, tuple[Path, Path]]) -> None:
    raw = tmp_path / paths.RAW
    raw.mkdir(parents=True)
    rows = []
    for i, (clip_id, (video, audio)) in enumerate(clips.items()):
        shutil.copy(video, raw / video.name)
        shutil.copy(audio, raw / audio.name)
        rows.append({"clip_id": clip_id, "actor": "M001", "emotion": "happy", "level": 1, "sentence": i + 1,
                     "video": video.name, "audio": audio.name})
    pd.DataFrame(rows).to_csv(raw / paths.MANIFEST_NAME, index=False)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_resample_converts_rates_and_writes_manifest(workdir):
    src = workdir / "src"
    src.mkdir()
    _write_raw(workdir, {"M001_happy_1_001": _make_clip(src, "a", 1.2)})
    run(load_config({"resample": {"workers": 1}}))
    manifest = pd.read_csv(workdir / paths.RESAMPLED / paths.MANIFEST_NAME)
    assert list(manifest["status"]) == ["ok"]
    video = probe(workdir / paths.RESAMPLED / manifest.loc[0, "video"])
    audio = probe(workdir / paths.RESAMPLED / manifest.loc[0, "audio"])
    assert video.fps == 25 and not video.has_audio
    assert audio.sample_rate_hz == 16000 and audio.channels == 1
    assert abs(manifest.loc[0, "duration_video_s"] - 1.2) < 0.1
    counts = json.loads((workdir / "metrics" / "resample.json").read_text())
    assert counts["clips_ok"] == 1 and counts["clips_failed"] == 0


def test_truncated_clip_is_counted_then_fails_past_tolerance(workdir):
    src = workdir / "src"
    src.mkdir()
    good = _make_clip(src, "good")
    bad_video, bad_audio = _make_clip(src, "bad")
    bad_video.write_bytes(bad_video.read_bytes()[:300])  # truncated mid-file
    _write_raw(workdir, {"M001_happy_1_001": good, "M001_happy_1_002": (bad_video, bad_audio)})

    run(load_config({"resample": {"workers": 1, "max_failed_share": 0.5}}))
    manifest = pd.read_csv(workdir / paths.RESAMPLED / paths.MANIFEST_NAME, keep_default_na=False)
    failed = manifest[manifest["status"] == "failed"]
    assert list(failed["clip_id"]) == ["M001_happy_1_002"]
    assert "bad.mp4" in failed["reason"].iloc[0]

    shutil.rmtree(workdir / paths.RESAMPLED)
    with pytest.raises(TooManyFailuresError, match=r"1 of 2 clips failed.*bad\.mp4"):
        run(load_config({"resample": {"workers": 1, "max_failed_share": 0.1}}))
    assert not (workdir / paths.RESAMPLED).exists(), "a failed stage must leave no output folder"
    assert not list((workdir / "data").glob(".resampled*")), "temporary folder left behind"


def test_audio_video_mismatch_is_reported(workdir, caplog):
    src = workdir / "src"
    src.mkdir()
    video, _ = _make_clip(src, "v", 1.0)
    _, audio = _make_clip(src, "a", 3.0)
    _write_raw(workdir, {"M001_happy_1_001": (video, audio)})
    run(load_config({"resample": {"workers": 1, "av_tolerance_s": 1.0}}))
    assert json.loads((workdir / "metrics" / "resample.json").read_text())["av_mismatches"] == 1
    assert "differ by more than" in caplog.text


def test_unknown_key_is_refused():
    with pytest.raises(ConfigError, match="unknown key 'fsp'.*valid keys: fps"):
        load_config({"resample": {"fsp": 25}})
