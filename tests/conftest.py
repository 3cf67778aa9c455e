"""Shared fixtures: the real clips in ../shared/clips (skipped cleanly when absent), the repo root, and the
download tests' working folder and local HTTP server."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path

import fake_mead
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


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """An empty working folder as cwd (stages read and write paths relative to it)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def server() -> Iterator[fake_mead.Server]:
    """A local HTTP server for fake MEAD archives, stopped after the test."""
    srv = fake_mead.Server()
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
