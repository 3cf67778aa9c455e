"""MLflow helper: one run per stage in the repo's database, tagged with stage and DVC experiment."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from emohead import tracking


@dataclass(frozen=True)
class Dummy:
    alpha: float = 1.0


def test_uri_follows_dvc_root(monkeypatch, tmp_path):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    assert tracking.tracking_uri() == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere.db")
    assert tracking.tracking_uri() == "sqlite:////elsewhere.db"


def test_stage_run_logs_params_metrics_and_tags(monkeypatch, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("DVC_ROOT", str(tmp_path))
    monkeypatch.setenv("DVC_EXP_NAME", "exp-test")
    uri = f"sqlite:///{tmp_path}/runs.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with tracking.stage_run("resample", Dummy()) as run:
        run.metrics({"clips": 3})
    client = mlflow.tracking.MlflowClient(uri)
    experiment = client.get_experiment_by_name(tracking.EXPERIMENT)
    assert experiment.artifact_location.startswith((tmp_path / "mlruns").as_uri())
    (found,) = client.search_runs([experiment.experiment_id])
    assert found.data.params == {"alpha": "1.0"}
    assert found.data.metrics["clips"] == 3
    assert found.data.tags["stage"] == "resample" and found.data.tags["dvc_exp_name"] == "exp-test"
