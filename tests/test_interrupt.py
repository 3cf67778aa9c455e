"""A data stage killed mid-way leaves nothing a later run could mistake for complete, and reruns cleanly."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from emohead import paths
from emohead.media import ffmpeg_exe

REPO = Path(__file__).resolve().parents[1]


def _raw_dataset(root: Path, n_clips: int) -> None:
    raw = root / paths.RAW
    raw.mkdir(parents=True)
    first = raw / "clip.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=30:duration=3",
         "-f", "lavfi", "-i", "sine=frequency=200:duration=3:sample_rate=48000", "-c:v", "libx264",
         "-c:a", "aac", "-shortest", str(first)],
        check=True,
    )
    rows = [
        {"clip_id": f"M001_happy_1_{i:03d}", "actor": "M001", "emotion": "happy", "level": 1, "sentence": i,
         "video": first.name, "audio": first.name}
        for i in range(1, n_clips + 1)
    ]
    pd.DataFrame(rows).to_csv(raw / paths.MANIFEST_NAME, index=False)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_killed_resample_leaves_no_output_and_reruns(tmp_path, sig):
    _raw_dataset(tmp_path, n_clips=12)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"resample": {"workers": 1}}))
    script = str(REPO / "stages" / "resample.py")
    proc = subprocess.Popen([sys.executable, script], cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "data").glob(".resampled.*.tmp/resampled/*.wav")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline, "stage never started writing"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; outputs were not written" in stderr
    assert not (tmp_path / paths.RESAMPLED).exists()
    assert not list((tmp_path / "data").glob(".resampled*")), "temporary output left behind"

    rerun = subprocess.run([sys.executable, script], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    manifest = pd.read_csv(tmp_path / paths.RESAMPLED / paths.MANIFEST_NAME)
    assert (manifest["status"] == "ok").sum() == 12
