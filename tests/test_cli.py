"""The `emohead` command line: --help of every subcommand, and `table1`'s handling of `dvc exp show --json`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emohead import cli, table1

EXP_SHOW = Path(__file__).parent / "data" / "dvc_exp_show.json"  # recorded from DVC 3.67.1 (see test below)


@pytest.mark.parametrize("argv", [["--help"], ["generate", "--help"], ["table1", "--help"]])
def test_help_of_every_command(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(argv)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: emohead" in out
    if argv[0] == "generate":
        assert "--audio" in out and "--image" in out and "--models" in out and "--fps" in out
    if argv[0] == "table1":
        assert "--no-run" in out and "mlflow server" in out


def test_console_script_entry_point_runs():
    proc = subprocess.run([sys.executable, "-m", "emohead.cli", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "generate" in proc.stdout and "table1" in proc.stdout


def test_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_parse_recorded_exp_show():
    # Recorded in a scratch repo: two finished experiments (`dvc exp run -n ...`) and one queued
    # (`dvc exp run --queue -n table1-wo-msef`), plus the workspace and baseline rows that must be ignored.
    experiments = table1.parse_exp_show(EXP_SHOW.read_text())
    assert set(experiments) == {"table1-baseline", "table1-ours", "table1-wo-msef"}
    ours, baseline, queued = (experiments[n] for n in ("table1-ours", "table1-baseline", "table1-wo-msef"))
    assert ours.state == "success" and baseline.state == "success"
    assert queued.state == "queued" and queued.metrics == {}
    assert ours.metrics["metrics/eval.json"]["f_lmd"] == 3.0  # the scratch stage wrote 2 + msef
    assert baseline.metrics["metrics/eval.json"]["m_lmd"] == 3.0  # 3 + cbam
    assert ours.metrics["metrics/eval.json"]["per_emotion"]["angry"]["m_lmd"] == 3.1
    assert baseline.params["params.yaml"]["model"] == {"msef": False, "cbam": False}
    assert ours.metrics["metrics/train2.json"]["perceptual_weights"] == "random"


def test_files_with_errors_are_left_out():
    payload = json.loads(EXP_SHOW.read_text())
    baseline = payload[1]
    assert "error" in baseline["data"]["metrics"]["metrics/eval.json"]  # the recording has one
    assert table1._files(baseline["data"], "metrics") == {}


def test_failed_try_does_not_hide_a_later_success():
    exp = {"rev": "abc", "name": "table1-ours", "data": {"metrics": {"metrics/eval.json": {"data": {"psnr": 30}}}}}
    payload = [
        {"rev": "workspace", "name": None, "data": {}, "experiments": None},
        {"rev": "base", "name": "main", "data": {}, "experiments": [
            {"revs": [exp], "executor": None, "name": "table1-ours"},
            {"revs": [{**exp, "rev": "def", "data": {}}], "executor": {"state": "failed"}, "name": "table1-ours"},
        ]},
    ]
    parsed = table1.parse_exp_show(payload)
    assert parsed["table1-ours"].state == "success"
    assert parsed["table1-ours"].metrics["metrics/eval.json"]["psnr"] == 30


def test_no_run_writes_report_from_exp_show(tmp_path):
    calls = []

    def runner(args):
        calls.append(list(args))
        return EXP_SHOW.read_text()

    md, png = table1.table1(run=False, runner=runner, reports=tmp_path)
    assert calls == [["dvc", "exp", "show", "--json"]]
    text = md.read_text()
    # Our rows: finished ones with numbers, the queued one marked, the missing one "not run".
    assert "| Ours | ours: `table1-ours` | 3.00 | 4.00 | 0.700 | 30.50 |" in text
    assert "| Baseline | ours: `table1-baseline` | 2.00 | 3.00 | 0.700 | 30.50 |" in text
    assert "table1-wo-msef` (queued)" in text
    assert "table1-wo-aatu` (not run)" in text
    # The paper's rows, copied from its Table 1.
    assert "| Ours | paper | 2.35 | 3.02 | 0.72 | 33.32 |" in text
    assert "| EVP [13] | paper | 3.01 | 2.45 | 0.71 | 29.53 |" in text
    assert "`data.source`): sample" in text and "perceptual_weights): random" in text
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


QUEUE_RUNNING = """Task     Name             Created    Status
779a042  table1-baseline  05:10 AM   Success
34fa091  table1-wo-msef   05:10 AM   Running
36d97dd  table1-wo-aatu   05:10 AM   Queued
15c191b  table1-ours      05:10 AM   Queued

Worker status: 1 active, 0 idle
"""  # as DVC 3.67 prints it


def test_run_queues_four_rows_with_one_worker_and_waits(tmp_path):
    recorded = json.loads(EXP_SHOW.read_text())
    finished = json.loads(EXP_SHOW.read_text())
    template = finished[1]["experiments"][0]
    finished[1]["experiments"] = [
        {**template, "name": row.experiment, "revs": [{**template["revs"][0], "name": row.experiment}]}
        for row in table1.ROWS
    ]
    empty = [recorded[0], {**recorded[1], "experiments": []}]
    shows = iter([empty, finished])  # before queueing, then once everything has finished
    queue = iter([QUEUE_RUNNING, QUEUE_RUNNING.replace("Running", "Success").replace("Queued", "Success")])
    calls = []

    def runner(args):
        calls.append(list(args))
        if args[:3] == ["dvc", "exp", "show"]:
            return json.dumps(next(shows))
        if args[:3] == ["dvc", "queue", "status"]:
            return next(queue)
        return "abc123\n" if args[:2] == ["git", "rev-parse"] else ""

    md, _ = table1.table1(run=True, runner=runner, reports=tmp_path, poll_s=0)
    queued = [c for c in calls if c[:4] == ["dvc", "exp", "run", "--queue"]]
    assert [c[5] for c in queued] == [r.experiment for r in table1.ROWS]
    baseline = next(c for c in queued if c[5] == "table1-baseline")
    assert baseline[6:] == ["-S", "model.msef=false", "-S", "model.cbam=false"]
    ours = next(c for c in queued if c[5] == "table1-ours")
    assert ours[6:] == ["-S", "model.msef=true", "-S", "model.cbam=true"]
    assert ["dvc", "queue", "start", "--jobs", "1"] in calls
    # Collected from the commit the rows were queued on, even if HEAD moved meanwhile.
    assert calls[-1] == ["dvc", "exp", "show", "--json", "--rev", "abc123"]
    assert "(not run)" not in md.read_text() and "(queued)" not in md.read_text()


def test_queue_status_is_parsed_per_row():
    assert table1.queue_states(lambda args: QUEUE_RUNNING) == {
        "table1-baseline": "success", "table1-wo-msef": "running", "table1-wo-aatu": "queued",
        "table1-ours": "queued"}


def test_existing_rows_are_not_silently_rerun(tmp_path):
    def runner(args):
        return EXP_SHOW.read_text() if args[:3] == ["dvc", "exp", "show"] else ""

    with pytest.raises(table1.EmoheadError, match="already exist.*--replace"):
        table1.table1(run=True, runner=runner, reports=tmp_path)


def test_parallel_workers_need_an_mlflow_server(tmp_path, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///x.db")
    with pytest.raises(table1.EmoheadError, match="mlflow server"):
        table1.table1(run=True, jobs=2, runner=lambda args: "[]", reports=tmp_path)


def test_paper_rows_match_the_paper_text():
    paper = Path(__file__).resolve().parents[2] / "shared" / "reference" / "paper.txt"
    if not paper.is_file():
        pytest.skip(f"{paper} not present")
    rows = {}
    for line in paper.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] in table1.PAPER_TABLE1:
            rows[cells[0]] = tuple(None if c in ("-", "N/A") else float(c) for c in cells[1:])
    assert rows == table1.PAPER_TABLE1


def test_cli_error_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = cli.main(["generate", "--audio", "nope.wav", "--image", "nope.png", "--out", "o.mp4"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and err.startswith("emohead generate: error:")


def test_waiting_gives_up_on_rows_that_vanish_from_the_queue():
    empty = json.loads(EXP_SHOW.read_text())
    empty[1]["experiments"] = []
    sleeps = []
    with pytest.raises(table1.EmoheadError, match="left the queue"):
        table1.wait_for_rows(lambda args: "Task  Name  Created  Status\n", poll_s=5, sleep=sleeps.append)
    assert sleeps == [5, 5]
