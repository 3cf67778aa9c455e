"""Stage `pca`: fit on the training split's landmarks, portable JSON, projection round trip, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emohead.errors import ConfigError, InputError
from emohead.features import schema
from emohead.pca import PcaModel, load_config, run

CROP = 128


def _write_features(root: Path, frames_per_clip: int, seed: int = 0) -> np.ndarray:
    """clips.parquet + landmarks.parquet: 3 train clips of a face with 4 modes of motion, 1 test clip far away."""
    rng = np.random.default_rng(seed)
    base = rng.uniform(30, 100, (68, 2))
    modes = rng.normal(0, 1, (4, 68, 2))
    rows, clips = [], []
    train_points = []
    for c, split in enumerate(["train", "train", "train", "test"]):
        clip_id = f"M001_sad_3_{c:03d}"
        weights = rng.normal(0, [8, 4, 2, 1], (frames_per_clip, 4))
        points = base + np.einsum("nk,kpd->npd", weights, modes)
        if split == "test":
            points = points + 40.0  # would move the mean if it leaked into the fit
        else:
            train_points.append(points)
        for i, p in enumerate(points):
            rows.append({"clip_id": clip_id, "frame": i, **{f"x{j}": p[j, 0] for j in range(68)},
                         **{f"y{j}": p[j, 1] for j in range(68)}, "interpolated": False})  # fmt: skip
        clips.append({"clip_id": clip_id, "actor": "M001", "emotion": "sad", "level": 3, "sentence": c,
                      "n_frames": frames_per_clip, "n_mfcc_frames": 4 * frames_per_clip + 1, "split": split,
                      "box_left": 0.0, "box_top": 0.0, "box_size": 100.0, "detection_rate": 1.0, "faces_max": 1,
                      "status": "ok", "reason": ""})  # fmt: skip
    root.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(clips, schema.CLIP_SCHEMA), schema.clips_path(root))
    pq.write_table(pa.Table.from_pylist(rows, schema.LANDMARK_SCHEMA), schema.landmarks_path(root))
    return np.concatenate(train_points) / CROP


def test_pca_stage_writes_model_metrics_and_plot(tmp_path: Path, monkeypatch) -> None:
    train = _write_features(tmp_path / "data" / "features", frames_per_clip=20)
    monkeypatch.chdir(tmp_path)
    run(load_config({"pca": {"n_components": 6}, "features": {"crop_size": CROP}}))

    model = PcaModel.load(tmp_path / "models" / "pca.json")
    assert model.mean.shape == (136,) and model.components.shape == (6, 136) and model.crop_size == CROP
    np.testing.assert_allclose(model.mean, train.reshape(len(train), -1).mean(axis=0), atol=1e-5)  # train only
    np.testing.assert_allclose(model.components @ model.components.T, np.eye(6), atol=1e-4)
    # 4 modes of motion: 4 components explain everything
    assert model.explained_variance_ratio[:4].sum() > 0.999

    coefficients = model.project(train)
    assert coefficients.shape == (len(train), 6)
    np.testing.assert_allclose(model.reconstruct(coefficients), train, atol=1e-4)
    np.testing.assert_allclose(model.mean.reshape(68, 2), train.mean(axis=0), atol=1e-5)  # x0, y0, x1, ... order

    metrics = json.loads((tmp_path / "metrics" / "pca.json").read_text())
    assert metrics["train_frames"] == 60
    assert metrics["explained_variance_total"] == pytest.approx(float(model.explained_variance_ratio.sum()))
    assert len(metrics["explained_variance_per_component"]) == 6
    plot = pd.read_csv(tmp_path / "plots" / "pca.csv")
    assert list(plot.columns) == ["component", "explained_variance_ratio", "cumulative_explained_variance"]
    assert plot["cumulative_explained_variance"].is_monotonic_increasing and len(plot) == 6
    print("pca explained variance:", metrics["explained_variance_per_component"])


def test_too_few_training_frames_is_a_clear_error(tmp_path: Path, monkeypatch) -> None:
    _write_features(tmp_path / "data" / "features", frames_per_clip=2)  # 6 training frames
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"6 training frames, fewer than pca.n_components=16"):
        run(load_config({"pca": {"n_components": 16}}))
    assert not (tmp_path / "models" / "pca.json").exists()


def test_missing_features_and_bad_config(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"data/features/clips.parquet: not found"):
        run(load_config({}))
    with pytest.raises(ConfigError, match="n_componets"):
        load_config({"pca": {"n_componets": 8}})
    with pytest.raises(ConfigError, match="n_components"):
        load_config({"pca": {"n_components": 0}})
    assert load_config({"features": {"crop_size": 256}}).crop_size == 256


def test_model_load_rejects_other_json(tmp_path: Path) -> None:
    path = tmp_path / "pca.json"
    path.write_text('{"mean": [1, 2]}')
    with pytest.raises(InputError, match="not a PCA model"):
        PcaModel.load(path)
