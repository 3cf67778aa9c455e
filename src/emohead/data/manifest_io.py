"""Reading and writing the clip manifest (CSV, one row per clip) as a table: resample and features use it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from emohead.atomic import atomic_path
from emohead.data.manifest import COLUMNS as MANIFEST_COLUMNS
from emohead.errors import InputError


def read_manifest(path: Path, required: Sequence[str] = MANIFEST_COLUMNS, written_by: str = "download") -> pd.DataFrame:
    """The manifest at `path`; a missing file, unreadable CSV or missing column is an InputError naming it."""
    if not path.is_file():
        raise InputError(f"{path}: manifest not found (run the {written_by} stage first: dvc repro {written_by})")
    try:
        table = pd.read_csv(path, dtype={"clip_id": str, "actor": str, "emotion": str, "video": str, "audio": str},
                            keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a readable manifest ({str(exc).splitlines()[0]})") from None
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputError(f"{path}: manifest lacks columns {', '.join(missing)}")
    return table


def write_manifest(table: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        table.to_csv(tmp, index=False)
