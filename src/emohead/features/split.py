"""Train/test split of the clips, written into clips.parquet (column `split`).

hash: speaker-dependent 8:2 as in EVP/EAMM: every actor appears in both splits; a clip goes to test when a
  stable hash of its id falls under test_share, so adding clips never moves the ones already assigned.
mead: MEAD's official split: per actor and (emotion, level) cell, the last 10 neutral / last 6 other
  sentences (by sentence number) are test.
Small datasets: an actor with >= 2 clips but no test clip gets its clip nearest the test side (lowest hash)
moved to test; a mead cell never gives all its clips to test when it has >= 2 (real MEAD cells have 30-40).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Literal

import numpy as np
import pandas as pd

from emohead.errors import ConfigError

log = logging.getLogger(__name__)

Strategy = Literal["hash", "mead"]
MEAD_TEST_SENTENCES = {"neutral": 10}  # per (actor, emotion, level) cell
MEAD_TEST_SENTENCES_OTHER = 6


def unit_hash(clip_id: str) -> float:
    """clip_id -> [0, 1), the same on every machine and Python run (unlike hash())."""
    digest = hashlib.sha256(clip_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_split(clips: pd.DataFrame, strategy: Strategy, test_share: float = 0.2) -> pd.Series:
    """'train' | 'test' per row of `clips` (columns clip_id, actor, emotion, level, sentence)."""
    if clips.empty:
        return pd.Series([], index=clips.index, dtype=object)
    if strategy == "hash":
        is_test = _hash_split(clips, test_share)
    elif strategy == "mead":
        is_test = _mead_split(clips)
    else:
        raise ConfigError(f"split.strategy: {strategy!r} is not one of 'hash', 'mead'")
    is_test = _ensure_test_per_actor(clips, is_test)
    return pd.Series(np.where(is_test, "test", "train"), index=clips.index, dtype=object)


def _hash_split(clips: pd.DataFrame, test_share: float) -> pd.Series:
    return clips["clip_id"].map(unit_hash) < test_share


def _mead_split(clips: pd.DataFrame) -> pd.Series:
    is_test = pd.Series(False, index=clips.index)
    for (_, emotion, _), cell in clips.groupby(["actor", "emotion", "level"], sort=False):
        wanted = MEAD_TEST_SENTENCES.get(emotion, MEAD_TEST_SENTENCES_OTHER)
        keep_for_train = 1 if len(cell) >= 2 else 0
        n_test = min(wanted, len(cell) - keep_for_train)
        if n_test > 0:
            last = cell.sort_values("sentence").index[-n_test:]
            is_test[last] = True
    return is_test


def _ensure_test_per_actor(clips: pd.DataFrame, is_test: pd.Series) -> pd.Series:
    is_test = is_test.copy()
    for actor, rows in clips.groupby("actor", sort=False):
        if len(rows) >= 2 and not is_test[rows.index].any():
            nearest = rows["clip_id"].map(unit_hash).idxmin()
            is_test[nearest] = True
            moved = clips.at[nearest, "clip_id"]
            log.warning("split: actor %s had no test clip; moved %s to test", actor, moved)
    if len(clips) >= 2 and not is_test.any():  # every actor has a single clip
        nearest = clips["clip_id"].map(unit_hash).idxmin()
        is_test[nearest] = True
    if len(clips) == 1:
        log.warning("split: a single clip can't be both train and test; it stays in train")
    return is_test
