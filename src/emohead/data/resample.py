"""Stage `resample`: every clip to constant 25 fps H.264 video and 16 kHz mono PCM wav (the paper's rates)."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emohead import paths
from emohead.atomic import atomic_path, write_json
from emohead.config import from_dict
from emohead.data.manifest_io import read_manifest, write_manifest
from emohead.errors import InputError
from emohead.media import probe, run_ffmpeg
from emohead.parallel import check_failures, map_clips
from emohead.tracking import stage_run

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResampleConfig:
    fps: int = 25
    sample_rate_hz: int = 16000
    max_height: int = 720
    crf: int = 18
    av_tolerance_s: float = 1.0
    max_failed_share: float = 0.1
    workers: int = 2


def load_config(params: dict) -> ResampleConfig:
    return from_dict(ResampleConfig, params.get("resample"), "resample")


@dataclass(frozen=True)
class ClipFiles:
    clip_id: str
    video: Path
    audio: Path
    out_dir: Path


def _video_filter(config: ResampleConfig) -> str:
    scale = f",scale=-2:'min({config.max_height},ih)'" if config.max_height > 0 else ""
    return f"fps={config.fps}{scale}"


def resample_clip(clip: ClipFiles, config: ResampleConfig) -> dict:
    """Convert one clip; raise InputError naming the file when it cannot be decoded."""
    if not probe(clip.video).has_video:
        raise InputError(f"{clip.video}: has no video stream")
    if not probe(clip.audio).has_audio:
        raise InputError(f"{clip.audio}: has no audio stream")
    video_out = clip.out_dir / f"{clip.clip_id}.mp4"
    audio_out = clip.out_dir / f"{clip.clip_id}.wav"
    run_ffmpeg(
        ["-i", str(clip.video), "-an", "-vf", _video_filter(config), "-c:v", "libx264", "-preset", "veryfast",
         "-crf", str(config.crf), "-pix_fmt", "yuv420p", str(video_out)],
        clip.video,
    )
    run_ffmpeg(
        ["-i", str(clip.audio), "-vn", "-ac", "1", "-ar", str(config.sample_rate_hz), "-c:a", "pcm_s16le",
         str(audio_out)],
        clip.audio,
    )
    video_info, audio_info = probe(video_out), probe(audio_out)
    if not video_info.has_video or not video_info.duration_s:
        raise InputError(f"{clip.video}: no video frames after decoding (zero-length clip?)")
    if not audio_info.has_audio or not audio_info.duration_s:
        raise InputError(f"{clip.audio}: no audio samples after decoding (zero-length clip?)")
    return {
        "video": video_out.name,
        "audio": audio_out.name,
        "duration_video_s": video_info.duration_s,
        "duration_audio_s": audio_info.duration_s,
        "av_mismatch": abs(video_info.duration_s - audio_info.duration_s) > config.av_tolerance_s,
    }


def run(config: ResampleConfig) -> None:
    manifest = read_manifest(paths.RAW / paths.MANIFEST_NAME)
    with stage_run("resample", config) as tracker, atomic_path(paths.RESAMPLED) as out_dir:
        out_dir.mkdir(parents=True)
        clips = [
            ClipFiles(row.clip_id, paths.RAW / row.video, paths.RAW / row.audio, out_dir)
            for row in manifest.itertuples()
        ]
        outcomes = map_clips(functools.partial(resample_clip, config=config), clips, config.workers, "resample")
        check_failures(outcomes, config.max_failed_share, "clips", name=lambda clip: clip.clip_id)
        rows = []
        for record, outcome in zip(manifest.to_dict("records"), outcomes, strict=True):
            result = outcome.result or {"video": "", "audio": "", "av_mismatch": False}
            rows.append({**record, **result, "status": "ok" if outcome.ok else "failed",
                         "reason": outcome.error or ""})
            if outcome.error:
                log.warning("skipped %s: %s", outcome.item.clip_id, outcome.error)
        table = pd.DataFrame(rows)
        mismatched = table[table["av_mismatch"].astype(bool)]
        for row in mismatched.itertuples():
            log.warning("%s: audio %.2f s vs video %.2f s differ by more than %.1f s", row.clip_id,
                        row.duration_audio_s, row.duration_video_s, config.av_tolerance_s)
        write_manifest(table, out_dir / paths.MANIFEST_NAME)
        counts = {
            "clips": len(table),
            "clips_ok": int((table["status"] == "ok").sum()),
            "clips_failed": int((table["status"] == "failed").sum()),
            "av_mismatches": len(mismatched),
            "seconds": tracker.elapsed(),
        }
        tracker.metrics(counts)
    write_json(paths.METRICS / "resample.json", counts)
    log.info("resampled %d clips (%d failed) to %d fps / %d Hz", counts["clips_ok"], counts["clips_failed"],
             config.fps, config.sample_rate_hz)
