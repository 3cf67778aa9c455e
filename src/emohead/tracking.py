"""One MLflow run per stage execution, in the user's repository database (also under `dvc exp run`)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emohead.config import as_flat_dict, repo_root

EXPERIMENT = "emohead"


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI if set, else sqlite:///<repo root>/mlflow.db (DVC_ROOT under dvc exp run)."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{repo_root() / 'mlflow.db'}"


def _git_revision(root: Path) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=False
        )
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _experiment_id(mlflow: Any) -> str:
    experiment = mlflow.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return experiment.experiment_id
    # Artifacts default to <cwd>/mlruns, which under `dvc exp run --temp` is a throw-away copy.
    artifacts = (repo_root() / "mlruns").as_uri()
    try:
        return mlflow.create_experiment(EXPERIMENT, artifact_location=artifacts)
    except Exception:  # another queue worker created it first
        return mlflow.get_experiment_by_name(EXPERIMENT).experiment_id


class StageRun:
    """Thin wrapper over an active MLflow run; every call is cheap and never raises on logging hiccups."""

    def __init__(self, mlflow: Any):
        self._mlflow = mlflow
        self.started = time.perf_counter()

    def params(self, config: Any, prefix: str = "") -> None:
        flat = as_flat_dict(config, prefix) if not isinstance(config, dict) else config
        self._mlflow.log_params({k: str(v)[:500] for k, v in flat.items()})

    def metrics(self, values: dict[str, float], step: int | None = None) -> None:
        clean = {k: float(v) for k, v in values.items() if v is not None}
        self._mlflow.log_metrics(clean, step=step)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def tags(self, values: dict[str, str]) -> None:
        self._mlflow.set_tags(values)

    def artifact(self, path: str | Path, folder: str | None = None) -> None:
        self._mlflow.log_artifact(str(path), artifact_path=folder)


@contextlib.contextmanager
def stage_run(stage: str, config: Any = None) -> Iterator[StageRun]:
    """Open the stage's MLflow run, tagged with DVC experiment, git revision and stage name."""
    import mlflow  # ~1 s to import: only stages that track pay for it

    mlflow.set_tracking_uri(tracking_uri())
    root = repo_root()
    tags = {
        "stage": stage,
        "dvc_exp_name": os.environ.get("DVC_EXP_NAME", "workspace"),
        "dvc_exp_baseline_rev": os.environ.get("DVC_EXP_BASELINE_REV", ""),
        "git_revision": _git_revision(root),
    }
    run_name = f"{stage}:{tags['dvc_exp_name']}"
    with mlflow.start_run(experiment_id=_experiment_id(mlflow), run_name=run_name, tags=tags):
        run = StageRun(mlflow)
        if config is not None:
            run.params(config)
        try:
            yield run
        finally:
            mlflow.log_metric("stage_seconds", time.perf_counter() - run.started)
