"""`emohead table1`: the paper's Table 1 (the MSEF/AATU ablation) as four DVC experiments, and its report.

Rows are queued with `dvc exp run --queue -n <name> -S model.msef=... -S model.cbam=...` and run by ONE queue
worker (`dvc queue start --jobs 1`): every stage writes to the SQLite MLflow store (mlflow.db), which must not
be written by parallel workers. To run the rows in parallel, start `mlflow server --backend-store-uri
sqlite:///mlflow.db --host 127.0.0.1 --port 5000`, export MLFLOW_TRACKING_URI=http://127.0.0.1:5000 and pass
--jobs N. Metrics are collected from `dvc exp show --json` into reports/table1.md and reports/table1.png.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emohead import plots
from emohead.atomic import write_text
from emohead.errors import EmoheadError, InputError

log = logging.getLogger(__name__)

REPORTS = Path("reports")
TABLE_MD = REPORTS / "table1.md"
TABLE_PNG = REPORTS / "table1.png"
EVAL_METRICS = "metrics/eval.json"
TRAIN2_METRICS = "metrics/train2.json"
COLUMNS = (("F-LMD ↓", "f_lmd"), ("M-LMD ↓", "m_lmd"), ("SSIM ↑", "ssim"), ("PSNR ↑", "psnr"))


@dataclass(frozen=True)
class Row:
    label: str  # as printed in the paper's Table 1
    experiment: str  # DVC experiment name
    msef: bool
    cbam: bool

    def set_params(self) -> list[str]:
        # Both switches are always given, so a row never inherits a non-default workspace value.
        return ["-S", f"model.msef={str(self.msef).lower()}", "-S", f"model.cbam={str(self.cbam).lower()}"]


ROWS: tuple[Row, ...] = (
    Row("Baseline", "table1-baseline", msef=False, cbam=False),
    Row("Ours w/o MSEF", "table1-wo-msef", msef=False, cbam=True),
    Row("Ours w/o AATU", "table1-wo-aatu", msef=True, cbam=False),
    Row("Ours", "table1-ours", msef=True, cbam=True),
)

# Table 1 of Wang et al., "Emotional Talking Head Generation based on Memory-Sharing and Attention-Augmented
# Networks" (/work/shared/reference/paper.txt, section 4.2), MEAD test set: (F-LMD, M-LMD, SSIM, PSNR).
PAPER_TABLE1: dict[str, tuple[float | None, float | None, float | None, float | None]] = {
    "Ground Truth": (0.00, 0.00, 1.00, None),
    "Baseline": (2.39, 3.38, 0.69, 32.38),
    "EVP [13]": (3.01, 2.45, 0.71, 29.53),
    "Audio2Head [36]": (None, None, 0.69, 30.91),
    "Ours w/o MSEF": (2.38, 3.06, 0.72, 33.30),
    "Ours w/o AATU": (2.35, 3.02, 0.72, 33.29),
    "Ours": (2.35, 3.02, 0.72, 33.32),
}

TERMINAL_STATES = {"success", "failed"}
# When one name shows up more than once (a failed try, then a rerun), the most useful entry wins.
STATE_PRIORITY = {"success": 3, "running": 2, "queued": 1, "failed": 0}


@dataclass(frozen=True)
class Experiment:
    """One row of `dvc exp show --json`, reduced to what the table needs."""

    name: str
    rev: str
    state: str  # success | queued | running | failed (DVC's executor state; success for finished ones)
    metrics: dict[str, dict[str, Any]]  # metrics file -> its data
    params: dict[str, dict[str, Any]]  # params file -> its data


def _files(data: dict | None, kind: str) -> dict[str, dict[str, Any]]:
    """{'metrics/eval.json': {'data': {...}}} -> {'metrics/eval.json': {...}}; files with errors left out."""
    files = (data or {}).get(kind) or {}
    return {path: entry["data"] for path, entry in files.items() if isinstance(entry, dict) and "data" in entry}


def parse_exp_show(payload: str | list) -> dict[str, Experiment]:
    """`dvc exp show --json` output -> {experiment name: Experiment} (DVC 3.x: ExpState/ExpRange dumps).

    The top level is a list of ExpState dicts {rev, name, data, error, experiments}: the workspace, then the
    baseline commit(s); each baseline's `experiments` is a list of ExpRange {revs: [ExpState...], executor,
    name}. data = SerializableExp {rev, timestamp, params, metrics, deps, outs, meta}.
    """
    states = json.loads(payload) if isinstance(payload, str) else payload
    if not isinstance(states, list):
        raise InputError("dvc exp show --json: expected a list of experiment states")
    found: dict[str, Experiment] = {}
    for baseline in states:
        for exp_range in baseline.get("experiments") or []:
            executor = exp_range.get("executor") or {}
            for state in exp_range.get("revs") or []:
                name = state.get("name") or exp_range.get("name")
                if not name:
                    continue
                status = executor.get("state") or ("failed" if state.get("error") else "success")
                if name in found and STATE_PRIORITY.get(found[name].state, 0) >= STATE_PRIORITY.get(status, 0):
                    continue
                found[name] = Experiment(
                    name=name,
                    rev=state.get("rev", ""),
                    state=status,
                    metrics=_files(state.get("data"), "metrics"),
                    params=_files(state.get("data"), "params"),
                )
    return found


Runner = Callable[[Sequence[str]], str]


def run_command(args: Sequence[str]) -> str:
    """Run a dvc command in the repository; a failure raises EmoheadError with its last stderr line."""
    args = list(args)
    if args[0] == "dvc" and shutil.which("dvc") is None:
        beside = Path(sys.executable).parent / "dvc"  # the venv's dvc when the venv is not activated
        args[0] = str(beside) if beside.is_file() else args[0]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise EmoheadError(f"{args[0]}: not found on PATH (activate the project's virtual environment)") from None
    if proc.returncode != 0:
        lines = [line for line in proc.stderr.splitlines() if line.strip()] or ["(no message)"]
        raise EmoheadError(f"`{' '.join(args)}` failed: {lines[-1].strip()}")
    return proc.stdout


def show_experiments(runner: Runner = run_command, rev: str | None = None) -> dict[str, Experiment]:
    """Experiments derived from `rev` (HEAD by default: a commit made while the queue ran hides them)."""
    return parse_exp_show(runner(["dvc", "exp", "show", "--json", *(["--rev", rev] if rev else [])]))


def queue_states(runner: Runner = run_command) -> dict[str, str]:
    """`dvc queue status` -> {experiment name: queued | running | success | failed} for the Table 1 rows."""
    names = {row.experiment for row in ROWS}
    states = {}
    for line in runner(["dvc", "queue", "status"]).splitlines():
        cells = line.split()
        if len(cells) >= 3 and cells[1] in names:  # Task  Name  Created...  Status
            states[cells[1]] = cells[-1].lower()
    return states


def queue_rows(runner: Runner = run_command, replace: bool = False, jobs: int = 1) -> None:
    """Queue the four rows as DVC experiments and start the queue with `jobs` workers."""
    existing = show_experiments(runner)
    clash = [row.experiment for row in ROWS if row.experiment in existing]
    if clash and not replace:
        raise EmoheadError(
            f"experiments {', '.join(clash)} already exist; collect them with `emohead table1 --no-run`, "
            "or rerun with --replace (removes them first)"
        )
    if clash:
        runner(["dvc", "exp", "remove", *clash])
    for row in ROWS:
        runner(["dvc", "exp", "run", "--queue", "-n", row.experiment, *row.set_params()])
        log.info("queued %s (%s)", row.experiment, row.label)
    runner(["dvc", "queue", "start", "--jobs", str(jobs)])


def wait_for_rows(
    runner: Runner = run_command, baseline: str | None = None, poll_s: float = 30.0,
    sleep: Callable[[float], None] = time.sleep, max_missing_polls: int = 3,
) -> dict[str, Experiment]:
    """Poll `dvc queue status` until every row has succeeded or failed, then collect from `baseline`."""
    missing_polls = 0
    while True:
        found = queue_states(runner)
        states = {row.experiment: found.get(row.experiment, "missing") for row in ROWS}
        if all(state in TERMINAL_STATES for state in states.values()):
            return show_experiments(runner, rev=baseline)
        missing = [name for name, state in states.items() if state == "missing"]
        missing_polls = missing_polls + 1 if missing else 0
        if missing_polls >= max_missing_polls:  # neither queued, running nor finished: lost from the queue
            raise EmoheadError(f"experiments {', '.join(missing)} left the queue without a result; "
                               "see `dvc queue status` and `dvc queue logs <name>`")
        log.info("waiting: %s", ", ".join(f"{name} {state}" for name, state in states.items()))
        sleep(poll_s)


def _fmt(value: Any, digits: int = 2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def _note(experiments: dict[str, Experiment]) -> list[str]:
    """Dataset and perceptual-loss weights: the two facts that decide how comparable our numbers are."""
    ours = [experiments[row.experiment] for row in ROWS if row.experiment in experiments]
    sources = sorted({str(e.params.get("params.yaml", {}).get("data", {}).get("source")) for e in ours
                      if e.params.get("params.yaml", {}).get("data")})
    weights = sorted({str(e.metrics[TRAIN2_METRICS].get("perceptual_weights")) for e in ours
                      if TRAIN2_METRICS in e.metrics})
    dataset = f"- Dataset (`data.source`): {', '.join(sources) or 'unknown'}. The paper uses MEAD (8:2 split)."
    if "sample" in sources:
        dataset += " `sample` is the generated offline dataset: compare the ordering of rows, not the values."
    return [
        dataset,
        f"- Perceptual-loss weights (`metrics/train2.json` perceptual_weights): {', '.join(weights) or 'unknown'} "
        "(the paper uses ImageNet-trained VGG-19).",
        "- Our LMDs are in pixels of the evaluation crop (`evaluate.crop_size`, 128 as evaluation_eat), dlib "
        "re-fitted on real and generated frames; SSIM/PSNR on uint8 RGB (see src/emohead/evaluate.py).",
    ]


def render_markdown(experiments: dict[str, Experiment]) -> str:
    header = "| Method | Source | " + " | ".join(c for c, _ in COLUMNS) + " |"
    lines = [
        "# Table 1: quantitative results (ablation of MSEF and AATU)",
        "",
        "Made by `emohead table1` from `dvc exp show --json`; the paper's rows are copied from its Table 1.",
        "",
        header,
        "|" + "---|" * (len(COLUMNS) + 2),
    ]
    for label, values in PAPER_TABLE1.items():
        lines.append(f"| {label} | paper | " + " | ".join(_fmt(v) for v in values) + " |")
    for row in ROWS:
        exp = experiments.get(row.experiment)
        scores = exp.metrics.get(EVAL_METRICS, {}) if exp else {}
        status = "" if exp and exp.state == "success" else f" ({exp.state if exp else 'not run'})"
        cells = " | ".join(_fmt(scores.get(key), 3 if key == "ssim" else 2) for _, key in COLUMNS)
        lines.append(f"| {row.label} | ours: `{row.experiment}`{status} | {cells} |")
    return "\n".join([*lines, "", "Notes:", *_note(experiments), ""])


def write_report(experiments: dict[str, Experiment], reports: Path = REPORTS) -> tuple[Path, Path]:
    """reports/table1.md and reports/table1.png (grouped bars: ours beside the paper, per metric)."""
    md, png = reports / TABLE_MD.name, reports / TABLE_PNG.name
    write_text(md, render_markdown(experiments))
    bars = {}
    for i, (title, key) in enumerate(COLUMNS):
        ours = {}
        for row in ROWS:
            exp = experiments.get(row.experiment)
            ours[row.label] = exp.metrics.get(EVAL_METRICS, {}).get(key) if exp else None
        bars[title] = {"ours": ours, "paper": {row.label: PAPER_TABLE1[row.label][i] for row in ROWS}}
    plots.table1_bars(bars, png)
    return md, png


def table1(run: bool = True, replace: bool = False, jobs: int = 1, runner: Runner = run_command,
           poll_s: float = 30.0, reports: Path = REPORTS, rev: str | None = None) -> tuple[Path, Path]:
    """Queue and run the four rows (unless run=False), wait, collect, write the report."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    if run and jobs > 1 and not uri.startswith(("http://", "https://")):
        raise EmoheadError(
            f"--jobs {jobs}: parallel queue workers must not share the SQLite MLflow store; start `mlflow server "
            "--backend-store-uri sqlite:///mlflow.db` and export MLFLOW_TRACKING_URI=http://127.0.0.1:5000"
        )
    if run:
        baseline = runner(["git", "rev-parse", "HEAD"]).strip()
        queue_rows(runner, replace=replace, jobs=jobs)
        experiments = wait_for_rows(runner, baseline, poll_s)
    else:
        experiments = show_experiments(runner, rev=rev)
    missing = [row.experiment for row in ROWS if row.experiment not in experiments]
    if len(missing) == len(ROWS):
        raise InputError("dvc exp show: none of the Table 1 experiments exist; run `emohead table1` without --no-run")
    failed = [name for name, e in experiments.items() if name.startswith("table1-") and e.state == "failed"]
    if failed:
        log.warning("failed experiments (see `dvc queue logs <name>`): %s", ", ".join(failed))
    return write_report(experiments, reports)
