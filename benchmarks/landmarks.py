"""Landmark extraction: ours (HOG on a downscaled frame + predictor tracking) vs the peers' way (HOG on every
full-resolution frame, then the predictor), on the same decoded frames, in one run.

    python benchmarks/landmarks.py [clip.mp4 ...] [--max-frames 50] [--detect-max-side 320]

Default clips: the real clips in ../shared/clips plus a 1080p version of one of them (upscaled with ffmpeg
into a temp folder, as MEAD's raw video is 1920x1080). Prints frames/s of both, the speed-up and the mean
per-point distance between the two landmark sets (pixels of the clip's frame).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from emohead.features.landmarks import LandmarkDetector, to_gray
from emohead.media import ffmpeg_exe, read_frames

SHARED = Path(__file__).resolve().parents[2] / "shared" / "clips"
TO_1080P = "scale=-2:1080,pad=1920:1080:(ow-iw)/2:0"


def peers_landmarks(detector: LandmarkDetector, frames: np.ndarray) -> list[np.ndarray | None]:
    """ATVGnet / evaluation_eat: dlib's HOG on the full frame (upsampled once when small), largest face."""
    detect, fit = detector._detector, detector.fit  # the same dlib models as ours
    found = []
    for frame in frames:
        gray = to_gray(frame)
        rects = detect(gray, 1 if max(gray.shape) < 400 else 0)
        found.append(fit(gray, max(rects, key=lambda r: r.area())) if rects else None)
    return found


def measure(path: Path, max_frames: int, detect_max_side: int) -> dict[str, float]:
    frames = read_frames(path)[:max_frames]
    detector = LandmarkDetector(detect_max_side)
    started = time.perf_counter()
    ours, _, _ = detector.track_clip(frames)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    peers = peers_landmarks(detector, frames)
    peers_s = time.perf_counter() - started
    both = [i for i, p in enumerate(peers) if p is not None]
    distance = np.linalg.norm(ours[both] - np.stack([peers[i] for i in both]), axis=-1)
    face_px = float(np.median(np.ptp(ours[:, :, 0], axis=1)))  # jaw-to-jaw width: the scale of the error
    return {
        "frames": len(frames),
        "height": frames.shape[1],
        "ours_fps": len(frames) / ours_s,
        "peers_fps": len(frames) / peers_s,
        "speedup": peers_s / ours_s,
        "mean_px": float(distance.mean()),
        "mean_px_at_128_crop": float(distance.mean()) * 128 / (face_px * 1.5),  # crop side ~ 1.5x face width
        "detections": detector.detections,
        "peers_missed": len(frames) - len(both),
    }


def make_1080p(source: Path, folder: Path, seconds: float) -> Path:
    target = folder / f"{source.stem}_1080p.mp4"
    cmd = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-t", str(seconds), "-i", str(source),
           "-vf", TO_1080P, "-an", "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", str(target)]  # fmt: skip
    subprocess.run(cmd, check=True)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("clips", nargs="*", type=Path)
    parser.add_argument("--max-frames", type=int, default=50, help="frames per clip (the peers' way is slow)")
    parser.add_argument("--detect-max-side", type=int, default=320, help="features.detect_max_side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        clips = list(args.clips)
        if not clips:
            if not SHARED.is_dir():
                print(f"no clips given and {SHARED} not found", file=sys.stderr)
                return 2
            clips = sorted(SHARED.glob("*.mp4"))[:3]
            clips += [make_1080p(SHARED / "videoretalking_face2.mp4", Path(tmp), args.max_frames / 25 + 0.2)]
        header = f"{'clip':36} {'frames':>6} {'height':>6} {'ours f/s':>9} {'peers f/s':>9} {'speed-up':>8}"
        print(header + f" {'mean px':>8} {'@128 crop':>9} {'detects':>7}")
        for clip in clips:
            r = measure(clip, args.max_frames, args.detect_max_side)
            print(f"{clip.name:36} {r['frames']:6d} {r['height']:6d} {r['ours_fps']:9.1f} {r['peers_fps']:9.1f} "
                  f"{r['speedup']:7.1f}x {r['mean_px']:8.2f} {r['mean_px_at_128_crop']:9.2f} "
                  f"{r['detections']:7d}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
