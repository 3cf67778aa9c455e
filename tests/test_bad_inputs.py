"""The bad-input matrix: one row per case, each asserting the exact outcome a user sees.

Rows here cover what reaches the pipeline's front door (media files, params); stage-specific rows (no face,
two faces, NaN in training, missing models...) live beside each stage's tests and are listed in README's
"What happens when..." table.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from emohead.data.resample import ClipFiles, ResampleConfig, resample_clip
from emohead.errors import InputError
from emohead.media import ffmpeg_exe, probe


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-loglevel", "error", "-y", *args], check=True)


def video(path: Path, seconds: float = 1.0, fps: int = 30, vfr: bool = False) -> Path:
    extra = ["-vf", r"select='not(mod(n\,3))'", "-fps_mode", "vfr"] if vfr else []
    _ffmpeg("-f", "lavfi", "-i", f"testsrc=size=96x64:rate={fps}:duration={seconds}", *extra, "-c:v", "libx264",
            str(path))
    return path


def audio(path: Path, seconds: float = 1.0, rate: int = 48000, channels: int = 2, silent: bool = False) -> Path:
    source = f"anullsrc=r={rate}:cl={'stereo' if channels == 2 else 'mono'}" if silent else (
        f"sine=frequency=300:sample_rate={rate}")
    _ffmpeg("-f", "lavfi", "-t", str(seconds), "-i", source, "-ac", str(channels), "-ar", str(rate), str(path))
    return path


@dataclass(frozen=True)
class Case:
    name: str
    make: callable  # (folder) -> (video, audio)
    error: str | None  # regex the one-line error must match; None = converts
    check: callable = None  # (result, out_dir) -> None


def truncated(folder: Path):
    v = video(folder / "clip.mp4")
    v.write_bytes(v.read_bytes()[:400])
    return v, audio(folder / "a.wav")


def no_audio_stream(folder: Path):
    v = video(folder / "clip.mp4")
    return v, v


def audio_without_video(folder: Path):
    a = audio(folder / "speech.m4a")
    return a, a


def zero_length(folder: Path):
    empty = folder / "empty.mp4"
    empty.write_bytes(b"")
    return empty, audio(folder / "a.wav")


def _rate(rate: int, channels: int):
    def make(folder: Path):
        return video(folder / "clip.mp4"), audio(folder / "a.wav", rate=rate, channels=channels)

    return make


def _is_16k_mono(result: dict, out: Path) -> None:
    info = probe(out / result["audio"])
    assert (info.sample_rate_hz, info.channels) == (16000, 1)


def mismatched(folder: Path):
    return video(folder / "clip.mp4", seconds=1.0), audio(folder / "a.wav", seconds=2.5)


def _flags_mismatch(result: dict, out: Path) -> None:
    assert result["av_mismatch"] and result["duration_audio_s"] - result["duration_video_s"] > 1.0


def variable_frame_rate(folder: Path):
    return video(folder / "clip.mp4", seconds=2.0, vfr=True), audio(folder / "a.wav", seconds=2.0)


def _constant_25(result: dict, out: Path) -> None:
    info = probe(out / result["video"])
    assert info.fps == 25
    import cv2

    frames = int(cv2.VideoCapture(str(out / result["video"])).get(cv2.CAP_PROP_FRAME_COUNT))
    assert abs(frames - 50) <= 2, frames


def silent(folder: Path):
    return video(folder / "clip.mp4"), audio(folder / "a.wav", silent=True)


def odd_path(folder: Path):
    weird = folder / "dossier été" / "clip ✓"
    weird.mkdir(parents=True)
    return video(weird / "vidéo 1.mp4"), audio(weird / "son 1.m4a")


CASES = [
    Case("truncated mp4", truncated, r"clip\.mp4: (has no video stream|not a readable|cannot decode)"),
    Case("mp4 with no audio stream", no_audio_stream, r"clip\.mp4: has no audio stream"),
    Case("audio with no video", audio_without_video, r"speech\.m4a: has no video stream"),
    Case("zero-length clip", zero_length, r"empty\.mp4: (not a readable|has no video|no video frames)"),
    Case("8 kHz mono input", _rate(8000, 1), None, _is_16k_mono),
    Case("44.1 kHz stereo input", _rate(44100, 2), None, _is_16k_mono),
    Case("audio/video lengths differ > 1 s", mismatched, None, _flags_mismatch),
    Case("variable frame rate video", variable_frame_rate, None, _constant_25),
    Case("silent audio", silent, None, _is_16k_mono),
    Case("non-ASCII path with spaces", odd_path, None, _is_16k_mono),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_resample_matrix(case: Case, tmp_path: Path):
    source, out = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    out.mkdir()
    video_path, audio_path = case.make(source)
    clip = ClipFiles("M001_happy_1_001", video_path, audio_path, out)
    if case.error:
        with pytest.raises(InputError, match=case.error) as info:
            resample_clip(clip, ResampleConfig())
        assert "\n" not in str(info.value)
    else:
        result = resample_clip(clip, ResampleConfig())
        case.check(result, out)
