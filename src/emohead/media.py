"""Audio/video I/O through the ffmpeg binary that ships in imageio-ffmpeg (no system ffmpeg needed)."""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np

from emohead.errors import InputError


@cache
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "ffmpeg failed"


def run_ffmpeg(args: list[str], source: Path, timeout_s: float = 600) -> bytes:
    """Run ffmpeg; a failure raises InputError naming the source file and ffmpeg's last message."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise InputError(f"{source}: ffmpeg did not finish within {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise InputError(f"{source}: cannot decode ({_last_error_line(proc.stderr.decode(errors='replace'))})")
    return proc.stdout


@dataclass(frozen=True)
class MediaInfo:
    duration_s: float | None
    has_video: bool
    has_audio: bool
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    sample_rate_hz: int | None = None
    channels: int | None = None


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?Video: .*?(\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?) fps")
_AUDIO = re.compile(r"Stream #\S+.*?Audio: [^,]+, (\d+) Hz, ([^,]+)")


def probe(path: str | Path) -> MediaInfo:
    """Streams and duration of a media file (imageio-ffmpeg ships no ffprobe: parse `ffmpeg -i`)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    proc = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)], capture_output=True, timeout=60, check=False
    )
    text = proc.stderr.decode(errors="replace")
    if "Invalid data found" in text or "moov atom not found" in text or "Stream #" not in text:
        raise InputError(f"{path}: not a readable audio/video file ({_last_error_line(text)})")
    duration = None
    if m := _DURATION.search(text):
        h, mnt, s = m.groups()
        duration = int(h) * 3600 + int(mnt) * 60 + float(s)
    video = _VIDEO.search(text)
    audio = _AUDIO.search(text)
    fps = None
    if video:
        line = text[video.start() : text.find("\n", video.start())]
        if f := _FPS.search(line):
            fps = float(f.group(1))
    channels = None
    if audio:
        layout = audio.group(2).strip()
        channels = {"mono": 1, "stereo": 2}.get(layout, int(layout.split()[0]) if layout[:1].isdigit() else None)
    return MediaInfo(
        duration_s=duration,
        has_video=video is not None,
        has_audio=audio is not None,
        fps=fps,
        width=int(video.group(1)) if video else None,
        height=int(video.group(2)) if video else None,
        sample_rate_hz=int(audio.group(1)) if audio else None,
        channels=channels,
    )


def load_audio(path: str | Path, sample_rate_hz: int = 16000) -> np.ndarray:
    """Any audio ffmpeg reads (wav, m4a, mp3, a video's audio track) -> float32 mono at sample_rate_hz."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    raw = run_ffmpeg(
        ["-i", str(path), "-vn", "-ac", "1", "-ar", str(sample_rate_hz), "-f", "f32le", "-acodec", "pcm_f32le", "-"],
        path,
    )
    audio = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    if audio.size == 0:
        raise InputError(f"{path}: contains no audio samples")
    return audio


def read_frames(path: str | Path) -> np.ndarray:
    """All frames of a video as uint8 RGB (n, h, w, 3)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    finally:
        capture.release()
    if not frames:
        raise InputError(f"{path}: no decodable video frames")
    return np.stack(frames)


def write_video(
    path: str | Path, frames: np.ndarray, fps: float, audio: str | Path | None = None, crf: int = 18
) -> None:
    """uint8 RGB frames (+ optional audio file) -> H.264/yuv420p (+ AAC) mp4, playable in browsers."""
    path = Path(path)
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    n, h, w, _ = frames.shape
    if h % 2 or w % 2:  # yuv420p needs even sides
        frames = np.ascontiguousarray(frames[:, : h - h % 2, : w - w % 2])
        n, h, w, _ = frames.shape
    args = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-"]
    if audio is not None:
        args += ["-i", str(audio), "-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k", "-shortest"]
    args += ["-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(crf), "-preset", "veryfast"]
    args += ["-movflags", "+faststart", str(path)]
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, input=frames.tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"{path}: cannot encode video ({_last_error_line(proc.stderr.decode(errors='replace'))})")
