"""The on-disk formats of data/features: every writer and reader imports these names.

data/features/
  clips.parquet      one row per clip (CLIP_COLUMNS)
  landmarks.parquet  one row per (clip_id, frame): 68 points in crop pixels (x0..x67, y0..y67)
  mfcc.parquet       one row per (clip_id, mfcc_frame): c0..c{n-1}; 4 MFCC frames per video frame
  crops/<clip_id>.npy  uint8 (n_frames, crop_size, crop_size, 3) RGB face crops, read with mmap
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

N_POINTS = 68
MOUTH = slice(48, 68)  # points 48-67: outer and inner lip
MFCC_PER_VIDEO_FRAME = 4  # 10 ms hop at 25 fps

X_COLUMNS = [f"x{i}" for i in range(N_POINTS)]
Y_COLUMNS = [f"y{i}" for i in range(N_POINTS)]

CLIP_SCHEMA = pa.schema(
    [
        ("clip_id", pa.string()),
        ("actor", pa.string()),
        ("emotion", pa.string()),
        ("level", pa.int32()),
        ("sentence", pa.int32()),
        ("n_frames", pa.int32()),
        ("n_mfcc_frames", pa.int32()),
        ("split", pa.string()),  # train | test
        # crop box in the resampled video's pixels: square, constant over the clip
        ("box_left", pa.float32()),
        ("box_top", pa.float32()),
        ("box_size", pa.float32()),
        ("detection_rate", pa.float32()),  # share of frames where a face was found
        ("faces_max", pa.int32()),  # most faces seen in one frame (>1: the largest was taken)
        ("status", pa.string()),  # ok | skipped
        ("reason", pa.string()),  # why skipped ("" when ok)
    ]
)

LANDMARK_SCHEMA = pa.schema(
    [("clip_id", pa.string()), ("frame", pa.int32())]
    + [(c, pa.float32()) for c in X_COLUMNS]
    + [(c, pa.float32()) for c in Y_COLUMNS]
    + [("interpolated", pa.bool_())]  # no face in this frame: filled from its neighbours
)


def mfcc_schema(n_mfcc: int) -> pa.Schema:
    return pa.schema(
        [("clip_id", pa.string()), ("mfcc_frame", pa.int32())]
        + [(f"c{i}", pa.float32()) for i in range(n_mfcc)]
    )


def clips_path(root: Path) -> Path:
    return Path(root) / "clips.parquet"


def landmarks_path(root: Path) -> Path:
    return Path(root) / "landmarks.parquet"


def mfcc_path(root: Path) -> Path:
    return Path(root) / "mfcc.parquet"


def crop_path(root: Path, clip_id: str) -> Path:
    return Path(root) / "crops" / f"{clip_id}.npy"


def landmarks_array(frame: pd.DataFrame) -> np.ndarray:
    """Rows of landmarks.parquet -> float32 array (n, 68, 2)."""
    xs = frame[X_COLUMNS].to_numpy(np.float32)
    ys = frame[Y_COLUMNS].to_numpy(np.float32)
    return np.stack([xs, ys], axis=-1)


def mfcc_array(frame: pd.DataFrame) -> np.ndarray:
    """Rows of mfcc.parquet -> float32 array (n, n_mfcc)."""
    columns = [c for c in frame.columns if c.startswith("c") and c[1:].isdigit()]
    columns.sort(key=lambda c: int(c[1:]))
    return frame[columns].to_numpy(np.float32)
