"""The clip manifest (CSV, one row per clip) that download writes and resample/features read."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emohead.atomic import atomic_path
from emohead.errors import InputError

MANIFEST_COLUMNS = ("clip_id", "actor", "emotion", "level", "sentence", "video", "audio")


def read_manifest(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise InputError(f"{path}: manifest not found; run the stage that writes it (dvc repro)")
    try:
        table = pd.read_csv(path, dtype={"clip_id": str, "actor": str, "video": str, "audio": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable manifest ({exc})") from None
    missing = [c for c in MANIFEST_COLUMNS if c not in table.columns]
    if missing:
        raise InputError(f"{path}: manifest lacks columns {', '.join(missing)}")
    return table


def write_manifest(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
