"""Stage 1's data: the features tables as per-clip arrays, MFCC windows per video frame, training windows."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emohead.data.layout import EMOTIONS
from emohead.errors import InputError
from emohead.features import schema

log = logging.getLogger(__name__)


@dataclass
class Clip:
    clip_id: str
    emotion: int  # index into EMOTIONS
    split: str  # train | test
    mfcc: np.ndarray  # (n_mfcc_frames, n_mfcc) raw
    landmarks: np.ndarray  # (n_frames, 68, 2) normalised: crop px / crop_size

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)

    @property
    def reference(self) -> np.ndarray:
        """The clip's reference landmarks: its first frame."""
        return self.landmarks[0]


@dataclass(frozen=True)
class PcaBasis:
    mean: np.ndarray  # (136,)
    components: np.ndarray  # (k, 136) over x0, y0, x1, y1, ... of normalised landmarks
    crop_size: int


def read_pca(path: Path) -> PcaBasis:
    """models/pca.json as arrays (read here, not via emohead.pca, to stay independent of its class)."""
    if not path.is_file():
        raise InputError(f"{path}: PCA model not found; run `dvc repro pca` first")
    try:
        data = json.loads(path.read_text())
        mean = np.asarray(data["mean"], np.float32)
        components = np.asarray(data["components"], np.float32)
        crop_size = int(data["crop_size"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a valid PCA model ({exc.__class__.__name__}: {exc})") from None
    size = schema.N_POINTS * 2
    if mean.shape != (size,) or components.ndim != 2 or components.shape[1] != size or crop_size <= 0:
        raise InputError(f"{path}: expected mean [{size}], components [k x {size}] and crop_size > 0")
    return PcaBasis(mean, components, crop_size)


def _read_table(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: features table not found; run `dvc repro features` first")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise InputError(f"{path}: cannot read Parquet ({exc.__class__.__name__}: {exc})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    return table


def load_clips(features_dir: Path, crop_size: int) -> list[Clip]:
    """Every `ok` clip of data/features with its raw MFCC and normalised landmarks."""
    clips_file = schema.clips_path(features_dir)
    table = _read_table(clips_file, ["clip_id", "emotion", "split", "n_frames", "status"])
    table = table[table["status"] == "ok"]
    unknown = sorted(set(table["emotion"]) - set(EMOTIONS))
    if unknown:
        raise InputError(f"{clips_file}: unknown emotion(s) {', '.join(unknown)}; expected {', '.join(EMOTIONS)}")
    landmark_cols = ["clip_id", "frame", *schema.X_COLUMNS, *schema.Y_COLUMNS]
    landmarks = _read_table(schema.landmarks_path(features_dir), landmark_cols)
    mfcc = _read_table(schema.mfcc_path(features_dir), ["clip_id", "mfcc_frame"])
    landmarks_by_clip = dict(tuple(landmarks.sort_values(["clip_id", "frame"]).groupby("clip_id", sort=False)))
    mfcc_by_clip = dict(tuple(mfcc.sort_values(["clip_id", "mfcc_frame"]).groupby("clip_id", sort=False)))
    clips = []
    for row in table.sort_values("clip_id").itertuples(index=False):
        if row.clip_id not in landmarks_by_clip or row.clip_id not in mfcc_by_clip:
            log.warning("%s: no landmarks or MFCC rows in %s; clip left out", row.clip_id, features_dir)
            continue
        points = schema.landmarks_array(landmarks_by_clip[row.clip_id]) / np.float32(crop_size)
        coefficients = schema.mfcc_array(mfcc_by_clip[row.clip_id])
        if len(points) == 0 or len(coefficients) == 0:
            continue
        clips.append(Clip(row.clip_id, EMOTIONS.index(row.emotion), row.split, coefficients, points))
    if clips and len({c.mfcc.shape[1] for c in clips}) != 1:
        raise InputError(f"{schema.mfcc_path(features_dir)}: clips have different numbers of MFCC coefficients")
    return clips


def split_clips(clips: list[Clip], features_dir: Path) -> tuple[list[Clip], list[Clip]]:
    """Train and test clips; an empty split is an error, a missing emotion in train a warning."""
    train = [c for c in clips if c.split == "train"]
    test = [c for c in clips if c.split == "test"]
    where = schema.clips_path(features_dir)
    if not train:
        raise InputError(f"{where}: no usable clips in the train split; check the features stage")
    if not test:
        raise InputError(f"{where}: no usable clips in the test split (needed for validation); check `split:`")
    absent = [e for i, e in enumerate(EMOTIONS) if i not in {c.emotion for c in train}]
    if absent:
        log.warning("%s: the train split has no clips of %s; the classifier never sees them", where, ", ".join(absent))
    return train, test


def mfcc_windows(mfcc: np.ndarray, n_frames: int, window: int) -> np.ndarray:
    """(n_frames, window, n_mfcc): `window` MFCC frames centred on each video frame, edges repeated.

    Video frame t spans MFCC frames [4t, 4t + 4); its window is centred on 4t + 2 (28 frames = video
    frames t-3 .. t+3, the ATVG/EVP convention). Indices past either end repeat the edge frame.
    """
    per_frame = schema.MFCC_PER_VIDEO_FRAME
    centres = np.arange(n_frames) * per_frame + per_frame // 2
    offsets = np.arange(window) - window // 2
    index = np.clip(centres[:, None] + offsets[None, :], 0, len(mfcc) - 1)
    return mfcc[index]


@dataclass(frozen=True)
class MfccNormaliser:
    """Train-split MFCC mean/std per coefficient, stored in the checkpoint for inference."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, clips: list[Clip]) -> MfccNormaliser:
        stacked = np.concatenate([c.mfcc for c in clips]).astype(np.float64)
        std = stacked.std(axis=0)
        std[std < 1e-6] = 1.0  # a constant coefficient carries nothing; don't blow it up
        return cls(stacked.mean(axis=0).astype(np.float32), std.astype(np.float32))

    def __call__(self, mfcc: np.ndarray) -> np.ndarray:
        return ((mfcc - self.mean) / self.std).astype(np.float32)


@dataclass(frozen=True)
class Window:
    clip: int  # index into the clip list
    start: int
    length: int


def training_windows(n_frames: list[int], sequence_len: int) -> list[Window]:
    """Cut clips (given by frame counts) into sequences of `sequence_len` frames, half-overlapping, the last
    one flush with the end. A clip shorter than sequence_len is one window of its own length.
    """
    windows = []
    for index, frames in enumerate(n_frames):
        length = min(sequence_len, frames)
        starts = list(range(0, frames - length + 1, max(1, length // 2)))
        if starts[-1] != frames - length:
            starts.append(frames - length)
        windows.extend(Window(index, start, length) for start in starts)
    return windows


def batches(windows: list[Window], batch_size: int, rng: np.random.Generator) -> list[list[Window]]:
    """Shuffled batches of equal-length windows (so a batch needs no padding)."""
    order = rng.permutation(len(windows))
    by_length: dict[int, list[Window]] = {}
    for i in order:
        by_length.setdefault(windows[i].length, []).append(windows[i])
    result = [group[i : i + batch_size] for group in by_length.values() for i in range(0, len(group), batch_size)]
    return [result[i] for i in rng.permutation(len(result))]
