"""Shared fixtures: the real clips in ../shared/clips (skipped cleanly when absent) and the repo root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CLIPS = Path(os.environ.get("EMOHEAD_SHARED_CLIPS", REPO.parent / "shared" / "clips"))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def shared_clips() -> Path:
    if not SHARED_CLIPS.is_dir():
        pytest.skip(f"real test clips not found at {SHARED_CLIPS} (set EMOHEAD_SHARED_CLIPS)")
    return SHARED_CLIPS


@pytest.fixture(autouse=True)
def _isolated_mlflow(tmp_path_factory, monkeypatch):
    """Tests never write into the developer's mlflow.db."""
    db = tmp_path_factory.getbasetemp() / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{db}")
