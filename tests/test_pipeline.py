"""Smoke test of the real entry points: `dvc repro` of the whole DAG on a tiny generated dataset, caching,
and `dvc exp run -S loss.gamma=...` rerunning only what depends on it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

TINY = {
    "data": {"emotions": ["angry", "happy", "neutral"], "levels": [1, 3], "max_sentences": 2},
    "sample": {"actors": ["W902"], "sentences": 2, "duration_s": 1.6, "width": 256, "height": 208},
    "features": {"workers": 2},
    "pca": {"n_components": 6},
    "stage1": {"epochs": 3, "batch_size": 4, "sequence_len": 16, "checkpoint_every": 1},
    "stage2": {"steps": 6, "batch_size": 2, "base_channels": 8, "depth": 3, "checkpoint_every": 3,
               "eval_frames": 8},
    "evaluate": {"videos": 1, "max_clips": 2},
}


def _merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = _merge(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def _sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "DVC_NO_ANALYTICS": "1"}
    env.pop("DVC_ROOT", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("project")
    for name in ["dvc.yaml", "stages", "src"]:
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / name)
    params = _merge(yaml.safe_load((REPO / "params.yaml").read_text()), TINY)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (root / ".gitignore").write_text("/data/\n/mlflow.db\n/mlruns/\n__pycache__/\n")
    _sh(["git", "init", "-q"], root)
    _sh(["git", "config", "user.email", "ci@example.com"], root)
    _sh(["git", "config", "user.name", "ci"], root)
    _sh(["dvc", "init", "-q"], root)
    _sh(["git", "add", "-A"], root)
    _sh(["git", "commit", "-qm", "tiny"], root)
    return root


@pytest.mark.slow
def test_dvc_repro_runs_the_whole_dag_then_caches(project):
    os.environ.pop("MLFLOW_TRACKING_URI", None)  # stages must find <repo>/mlflow.db through DVC_ROOT
    first = _sh(["dvc", "repro"], project)
    for stage in ["download", "resample", "features", "pca", "train_stage1", "train_stage2", "evaluate"]:
        assert f"Running stage '{stage}'" in first.stdout, first.stdout
    evaluation = json.loads((project / "metrics" / "eval.json").read_text())
    assert evaluation["m_lmd"] >= 0 and 0 < evaluation["ssim"] <= 1
    assert (project / "mlflow.db").is_file()

    second = _sh(["dvc", "repro"], project)
    assert "Running stage" not in second.stdout
    assert "didn't change" in second.stdout or "unchanged" in second.stdout


@pytest.mark.slow
def test_exp_run_with_new_gamma_reruns_only_stage1_and_evaluate(project):
    _sh(["git", "add", "-A"], project)
    _sh(["git", "commit", "-qm", "results", "--allow-empty"], project)
    run = _sh(["dvc", "exp", "run", "-S", "loss.gamma=1"], project)
    ran = {line.split("'")[1] for line in run.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"train_stage1", "evaluate"}, run.stdout
    diff = _sh(["dvc", "metrics", "diff", "--json"], project)
    changed = json.loads(diff.stdout or "{}")
    assert "metrics/train1.json" in changed, diff.stdout


def test_typo_in_params_is_one_line_error(project):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["resample"]["fsp"] = 30
    broken = project.parent / "broken"
    if not broken.exists():
        shutil.copytree(project, broken, ignore=shutil.ignore_patterns("data", ".dvc", ".git"))
    (broken / "params.yaml").write_text(yaml.safe_dump(params))
    proc = _sh([sys.executable, "stages/resample.py"], broken, check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("emohead resample: error: resample: unknown key 'fsp'")
    assert "Traceback" not in proc.stderr
