"""DVC stage `features`: data/resampled -> landmarks, face crops, MFCC and the split in data/features."""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from emohead import paths
from emohead.atomic import atomic_path, write_json
from emohead.config import from_dict
from emohead.data.manifest_io import read_manifest as read_table
from emohead.errors import ConfigError, InputError, TooManyFailuresError
from emohead.features import schema
from emohead.features.crops import clip_crop_box, crop_frames, to_crop_coords
from emohead.features.landmarks import LandmarkDetector
from emohead.features.mfcc import compute_mfcc, fit_to_video, is_silent, read_wav
from emohead.features.split import Strategy, assign_split
from emohead.parallel import map_clips
from emohead.tracking import stage_run

log = logging.getLogger(__name__)

VIDEO_FPS = 25.0  # what the resample stage writes
MANIFEST_COLUMNS = ("clip_id", "actor", "emotion", "level", "sentence", "video", "audio", "status")


@dataclass(frozen=True)
class SplitConfig:
    strategy: Strategy = "hash"
    test_share: float = 0.2

    def __post_init__(self) -> None:
        if not 0 < self.test_share < 1:
            raise ConfigError(f"split.test_share: must be between 0 and 1, got {self.test_share}")


@dataclass(frozen=True)
class FeaturesConfig:
    crop_size: int = 128
    crop_margin: float = 0.25
    n_mfcc: int = 13
    detect_max_side: int = 320
    redetect_every: int = 0
    min_detection_rate: float = 0.5
    max_skipped_share: float = 0.2
    workers: int = 2
    split: SplitConfig = SplitConfig()  # from params.yaml's own `split:` section

    def __post_init__(self) -> None:
        checks = {
            "crop_size": self.crop_size >= 16,
            "crop_margin": 0 <= self.crop_margin <= 2,
            "n_mfcc": self.n_mfcc >= 1,
            "detect_max_side": self.detect_max_side >= 80,  # HOG's window is 80 px
            "redetect_every": self.redetect_every >= 0,
            "min_detection_rate": 0 <= self.min_detection_rate <= 1,
            "max_skipped_share": 0 <= self.max_skipped_share <= 1,
            "workers": self.workers >= 1,
        }
        for key, ok in checks.items():
            if not ok:
                raise ConfigError(f"features.{key}: value {getattr(self, key)!r} is out of range")


def load_config(params: dict) -> FeaturesConfig:
    section = dict(params.get("features") or {})
    if "split" in section:
        raise ConfigError("features.split: the split has its own top-level section `split:`")
    config = from_dict(FeaturesConfig, section, "features")
    return dataclasses.replace(config, split=from_dict(SplitConfig, params.get("split"), "split"))


@dataclass(frozen=True)
class ClipTask:
    clip_id: str
    video: Path
    audio: Path


@dataclass
class ClipFeatures:
    """One clip's results, small enough to send back from a worker (crops are written by the worker)."""

    clip_id: str
    n_frames: int
    detection_rate: float
    faces_max: int
    status: str  # ok | skipped
    reason: str
    box: tuple[int, int, int] = (0, 0, 0)
    landmarks: np.ndarray | None = None  # (n, 68, 2) crop pixels
    interpolated: np.ndarray | None = None  # (n,) bool
    mfcc: np.ndarray | None = None  # (4n+1, n_mfcc)
    silent_audio: bool = False


def iter_frames(path: Path) -> Iterator[np.ndarray]:
    """Decode a video frame by frame (uint8 RGB): a 720p clip never sits in memory whole."""
    capture = cv2.VideoCapture(str(path))
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                return
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def process_clip(task: ClipTask, config: FeaturesConfig, crops_dir: Path) -> ClipFeatures:
    """Landmarks, crop and MFCC of one clip; unreadable input raises InputError (recorded as skipped)."""
    cv2.setNumThreads(1)  # clips already run in parallel processes
    if not task.video.is_file():
        raise InputError(f"{task.video}: video file not found")
    audio, sample_rate_hz = read_wav(task.audio)
    detector = LandmarkDetector(config.detect_max_side, config.redetect_every)
    try:
        landmarks, detected, faces_max = detector.track_clip(iter_frames(task.video))
    except InputError:
        raise InputError(f"{task.video}: no decodable video frames (zero-length or unreadable)") from None
    n_frames = len(landmarks)
    rate = float(detected.mean())
    if rate < config.min_detection_rate:
        reason = f"face found in {rate:.0%} of frames (min_detection_rate {config.min_detection_rate:.0%})"
        return ClipFeatures(task.clip_id, n_frames, rate, faces_max, "skipped", reason)

    box = clip_crop_box(landmarks[detected], config.crop_margin)
    crops = np.stack([crop_frames(frame, box, config.crop_size)[0] for frame in iter_frames(task.video)])
    if len(crops) != n_frames:
        raise InputError(f"{task.video}: decoded {len(crops)} frames, then {n_frames}: unstable decoding")
    np.save(schema.crop_path(crops_dir.parent, task.clip_id), crops)

    audio = fit_to_video(audio, sample_rate_hz, n_frames, VIDEO_FPS)
    return ClipFeatures(
        clip_id=task.clip_id,
        n_frames=n_frames,
        detection_rate=rate,
        faces_max=faces_max,
        status="ok",
        reason="",
        box=box,
        landmarks=to_crop_coords(landmarks, box, config.crop_size),
        interpolated=~detected,
        mfcc=compute_mfcc(audio, sample_rate_hz, config.n_mfcc),
        silent_audio=is_silent(audio),
    )


def read_manifest(root: Path) -> pd.DataFrame:
    """The resample stage's manifest, only the rows with status ok."""
    path = root / paths.MANIFEST_NAME
    manifest = read_table(path, MANIFEST_COLUMNS, written_by="resample")
    ok = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    if ok.empty:
        raise InputError(f"{path}: no clips with status ok")
    return ok


def _clip_row(meta: pd.Series, features: ClipFeatures | None, reason: str = "") -> dict:
    left, top, size = features.box if features else (0, 0, 0)
    return {
        "clip_id": meta["clip_id"],
        "actor": meta["actor"],
        "emotion": meta["emotion"],
        "level": int(meta["level"]),
        "sentence": int(meta["sentence"]),
        "n_frames": features.n_frames if features else 0,
        "n_mfcc_frames": len(features.mfcc) if features and features.mfcc is not None else 0,
        "split": "",  # filled for ok clips below
        "box_left": left,
        "box_top": top,
        "box_size": size,
        "detection_rate": features.detection_rate if features else 0.0,
        "faces_max": features.faces_max if features else 0,
        "status": features.status if features else "skipped",
        "reason": features.reason if features else reason,
    }


def _landmark_table(results: list[ClipFeatures]) -> pa.Table:
    points = np.concatenate([r.landmarks for r in results]) if results else np.zeros((0, 68, 2), np.float32)
    columns = {
        "clip_id": np.concatenate([[r.clip_id] * r.n_frames for r in results]) if results else [],
        "frame": np.concatenate([np.arange(r.n_frames) for r in results]) if results else [],
    }
    columns.update({name: points[:, i, 0] for i, name in enumerate(schema.X_COLUMNS)})
    columns.update({name: points[:, i, 1] for i, name in enumerate(schema.Y_COLUMNS)})
    columns["interpolated"] = np.concatenate([r.interpolated for r in results]) if results else []
    return pa.table({k: pa.array(v, type=schema.LANDMARK_SCHEMA.field(k).type) for k, v in columns.items()})


def _mfcc_table(results: list[ClipFeatures], n_mfcc: int) -> pa.Table:
    mfcc_schema = schema.mfcc_schema(n_mfcc)
    values = np.concatenate([r.mfcc for r in results]) if results else np.zeros((0, n_mfcc), np.float32)
    columns = {
        "clip_id": np.concatenate([[r.clip_id] * len(r.mfcc) for r in results]) if results else [],
        "mfcc_frame": np.concatenate([np.arange(len(r.mfcc)) for r in results]) if results else [],
    }
    columns.update({f"c{i}": values[:, i] for i in range(n_mfcc)})
    return pa.table({k: pa.array(v, type=mfcc_schema.field(k).type) for k, v in columns.items()})


def run(config: FeaturesConfig) -> None:
    manifest = read_manifest(paths.RESAMPLED)
    tasks = [
        ClipTask(row.clip_id, paths.RESAMPLED / str(row.video), paths.RESAMPLED / str(row.audio))
        for row in manifest.itertuples()
    ]
    with stage_run("features", config) as tracker:
        with atomic_path(paths.FEATURES) as staged:
            crops_dir = staged / "crops"
            crops_dir.mkdir(parents=True)
            started = time.perf_counter()
            work = functools.partial(process_clip, config=config, crops_dir=crops_dir)
            outcomes = map_clips(work, tasks, config.workers, desc="features")
            seconds = time.perf_counter() - started

            rows, results = [], []
            for (_, meta), outcome in zip(manifest.iterrows(), outcomes, strict=True):
                rows.append(_clip_row(meta, outcome.result, outcome.error or ""))
                if outcome.ok and outcome.result.status == "ok":
                    results.append(outcome.result)
            clips = pd.DataFrame(rows, columns=schema.CLIP_SCHEMA.names)
            ok = clips["status"] == "ok"
            clips.loc[ok, "split"] = assign_split(clips[ok], config.split.strategy, config.split.test_share)
            counts = _counts(clips, results, seconds)
            _check_skipped(clips, config.max_skipped_share)

            clip_table = pa.Table.from_pandas(clips, schema.CLIP_SCHEMA, preserve_index=False)
            pq.write_table(clip_table, schema.clips_path(staged))
            pq.write_table(_landmark_table(results), schema.landmarks_path(staged))
            pq.write_table(_mfcc_table(results, config.n_mfcc), schema.mfcc_path(staged))
        metrics_path = paths.METRICS / "features.json"
        write_json(metrics_path, counts)
        tracker.metrics(counts)
        tracker.artifact(metrics_path)
    if counts["silent_audio"]:
        log.warning("features: %d clips have silent audio (MFCC computed anyway)", counts["silent_audio"])
    log.info(
        "features: %d clips ok, %d skipped, %d frames (%d interpolated) at %.1f frames/s",
        counts["clips_ok"],
        counts["clips_skipped"],
        counts["frames"],
        counts["interpolated_frames"],
        counts["frames_per_s"],
    )


def _counts(clips: pd.DataFrame, results: list[ClipFeatures], seconds: float) -> dict[str, float]:
    frames = int(sum(r.n_frames for r in results))
    ok = clips["status"] == "ok"
    return {
        "clips_total": len(clips),
        "clips_ok": int(ok.sum()),
        "clips_skipped": int((~ok).sum()),
        "clips_train": int((clips["split"] == "train").sum()),
        "clips_test": int((clips["split"] == "test").sum()),
        "frames": frames,
        "interpolated_frames": int(sum(r.interpolated.sum() for r in results)),
        "detection_rate_mean": float(clips.loc[ok, "detection_rate"].mean()) if ok.any() else 0.0,
        "clips_multiple_faces": int((clips.loc[ok, "faces_max"] > 1).sum()),
        "silent_audio": int(sum(r.silent_audio for r in results)),
        "frames_per_s": frames / seconds if seconds > 0 else 0.0,
        "seconds": seconds,
    }


def _check_skipped(clips: pd.DataFrame, max_share: float) -> None:
    skipped = clips[clips["status"] != "ok"]
    for row in skipped.itertuples():
        log.warning("features: skipped %s: %s", row.clip_id, row.reason)
    if len(skipped) / len(clips) > max_share or len(skipped) == len(clips):
        examples = "; ".join(f"{r.clip_id}: {r.reason}" for r in skipped.head(3).itertuples())
        raise TooManyFailuresError(
            f"{len(skipped)} of {len(clips)} clips skipped (max_skipped_share {max_share:.0%}): {examples}"
        )
