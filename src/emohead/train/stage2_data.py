"""Frame pairs for the translator: (target landmark sketch + reference face) -> target face.

Reads data/features (formats in emohead.features.schema); crops are memory-mapped so a step touches only the
frames it samples.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from emohead.errors import InputError
from emohead.features import schema
from emohead.rendering import draw_landmarks

REFERENCE_MODES = ("same_clip", "same_emotion")


@dataclass(frozen=True)
class Clip:
    clip_id: str
    actor: str
    emotion: str
    split: str
    landmarks: np.ndarray  # (n, 68, 2) crop pixels
    crops: np.ndarray  # (n, S, S, 3) uint8 RGB, memory-mapped

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


def _read_parquet(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: not found; run `dvc repro features` first")
    try:
        table = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises many types for a damaged file
        raise InputError(f"{path}: unreadable Parquet file ({type(exc).__name__}: {exc})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column {missing[0]!r}")
    return table


def _open_crops(path: Path, n_frames: int) -> np.ndarray:
    if not path.is_file():
        raise InputError(f"{path}: face crops not found; run `dvc repro features` again")
    try:
        crops = np.load(path, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: unreadable .npy file ({exc})") from None
    if crops.ndim != 4 or crops.shape[3] != 3 or crops.shape[1] != crops.shape[2] or crops.dtype != np.uint8:
        raise InputError(f"{path}: expected uint8 crops (n, S, S, 3), got {crops.dtype} {crops.shape}")
    if len(crops) < n_frames:
        raise InputError(f"{path}: {len(crops)} frames but landmarks.parquet has {n_frames}")
    return crops


def load_clips(root: Path) -> list[Clip]:
    """Every clip with status ok, with its landmarks and memory-mapped crops."""
    clips = _read_parquet(schema.clips_path(root), ["clip_id", "actor", "emotion", "split", "status"])
    marks = _read_parquet(
        schema.landmarks_path(root), ["clip_id", "frame", *schema.X_COLUMNS, *schema.Y_COLUMNS]
    )
    by_clip = {cid: rows.sort_values("frame") for cid, rows in marks.groupby("clip_id", sort=False)}
    loaded = []
    for row in clips[clips["status"] == "ok"].itertuples(index=False):
        rows = by_clip.get(row.clip_id)
        if rows is None or rows.empty:
            raise InputError(f"{schema.landmarks_path(root)}: no landmarks for clip {row.clip_id}")
        landmarks = schema.landmarks_array(rows)
        crops = _open_crops(schema.crop_path(root, row.clip_id), len(landmarks))
        loaded.append(Clip(row.clip_id, row.actor, row.emotion, row.split, landmarks, crops))
    sizes = {clip.crops.shape[1] for clip in loaded}
    if len(sizes) > 1:
        raise InputError(f"{root}/crops: clips have different crop sizes {sorted(sizes)}")
    return loaded


def to_tensor(images: np.ndarray) -> torch.Tensor:
    """(B, S, S, 3) uint8 -> (B, 3, S, S) float in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


def translator_input(sketches: np.ndarray, references: np.ndarray) -> torch.Tensor:
    """Landmark sketches and reference faces, concatenated by channel: (B, 6, S, S) in [0, 1]."""
    return torch.cat([to_tensor(sketches), to_tensor(references)], dim=1)


@dataclass
class Batch:
    inputs: torch.Tensor  # (B, 6, S, S)
    targets: torch.Tensor  # (B, 3, S, S)


class FramePairs:
    """Random (target, reference) pairs from the train clips; all randomness from the caller's Generator."""

    def __init__(self, clips: list[Clip], reference: str):
        if reference not in REFERENCE_MODES:
            raise ValueError(f"reference must be one of {REFERENCE_MODES}, got {reference!r}")
        self.clips = [clip for clip in clips if clip.split == "train" and clip.n_frames > 0]
        if not self.clips:
            raise InputError("data/features/clips.parquet: no train clips with status ok to train stage 2 on")
        self.reference = reference
        self.crop_size = self.clips[0].crops.shape[1]
        # Targets uniform over frames, not clips: long clips weigh as much as their frames.
        self.frame_counts = np.array([clip.n_frames for clip in self.clips])
        self.clip_weights = self.frame_counts / self.frame_counts.sum()
        self.same_cell: dict[tuple[str, str], list[int]] = {}
        for index, clip in enumerate(self.clips):
            self.same_cell.setdefault((clip.actor, clip.emotion), []).append(index)

    @property
    def n_frames(self) -> int:
        return int(self.frame_counts.sum())

    def _reference_frame(self, clip_index: int, rng: np.random.Generator) -> np.ndarray:
        if self.reference == "same_clip":
            return self.clips[clip_index].crops[0]  # as at evaluation: the clip's first frame
        clip = self.clips[clip_index]
        other = self.clips[rng.choice(self.same_cell[(clip.actor, clip.emotion)])]
        return other.crops[rng.integers(other.n_frames)]

    def sample(self, batch_size: int, rng: np.random.Generator) -> Batch:
        size = self.crop_size
        sketches = np.empty((batch_size, size, size, 3), np.uint8)
        references = np.empty_like(sketches)
        targets = np.empty_like(sketches)
        for i, clip_index in enumerate(rng.choice(len(self.clips), size=batch_size, p=self.clip_weights)):
            clip = self.clips[clip_index]
            frame = rng.integers(clip.n_frames)
            sketches[i] = draw_landmarks(clip.landmarks[frame], size)
            references[i] = self._reference_frame(clip_index, rng)
            targets[i] = clip.crops[frame]
        return Batch(translator_input(sketches, references), to_tensor(targets))


@dataclass(frozen=True)
class EvalFrame:
    clip: Clip
    frame: int


def evaluation_frames(clips: list[Clip], count: int) -> list[EvalFrame]:
    """`count` test frames spread evenly over the test clips' frames, skipping each clip's first frame
    (it is the reference, which would flatter the copy-the-reference baseline)."""
    pool = [EvalFrame(clip, f) for clip in clips if clip.split == "test" for f in range(1, clip.n_frames)]
    if count <= 0 or not pool:
        return []
    picks = np.unique(np.linspace(0, len(pool), min(count, len(pool)), endpoint=False).astype(int))
    return [pool[i] for i in picks]
