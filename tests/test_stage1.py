"""Stage 1 (MSEF + Audio2Lm): modules, eq. 1-4, training loop behaviour, the stage entry point, the predictor."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from emohead import paths
from emohead.config import read_params
from emohead.data.layout import EMOTIONS, levels_for
from emohead.errors import ConfigError, InputError, TrainingDivergedError
from emohead.features import schema
from emohead.models.audio2lm import Audio2Lm, Stage1Architecture, Stage1Model
from emohead.models.msef import MSEF, MemoryUnits
from emohead.train import stage1
from emohead.train.stage1_data import batches, mfcc_windows, training_windows
from emohead.train.stage1_losses import (
    LossWeights,
    emotion_classification_loss,
    joint_loss,
    landmark_loss,
    lip_loss,
    pca_loss,
)

REPO = Path(__file__).resolve().parents[1]
N_MFCC = 13
CROP = 64


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


# --- synthetic features: a known audio -> mouth relation and per-emotion offsets -------------------------


def template_face() -> np.ndarray:
    """A plausible 68-point layout in normalised crop coordinates (jaw, brows, nose, eyes, lips)."""
    t = np.linspace(-1, 1, 17)
    jaw = np.stack([0.5 + 0.38 * t, 0.45 + 0.4 * np.sqrt(1 - 0.8 * t**2)], -1)
    brows = np.stack([np.r_[np.linspace(0.2, 0.42, 5), np.linspace(0.58, 0.8, 5)], np.full(10, 0.32)], -1)
    nose = np.r_[
        np.stack([np.full(4, 0.5), np.linspace(0.38, 0.55, 4)], -1),
        np.stack([np.linspace(0.43, 0.57, 5), np.full(5, 0.6)], -1),
    ]
    angle = np.linspace(0, 2 * np.pi, 6, endpoint=False)
    eye = np.stack([0.06 * np.cos(angle), 0.025 * np.sin(angle)], -1)
    eyes = np.r_[eye + [0.33, 0.4], eye + [0.67, 0.4]]
    outer = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    inner = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    lips = np.r_[
        np.stack([0.5 - 0.13 * np.cos(outer), 0.74 + 0.04 * np.sin(outer)], -1),
        np.stack([0.5 - 0.08 * np.cos(inner), 0.74 + 0.015 * np.sin(inner)], -1),
    ]
    return np.concatenate([jaw, brows, nose, eyes, lips]).astype(np.float32)


def write_features(
    root: Path,
    actors=("M001", "W002"),
    sentences=2,
    frames=(24, 32),
    emotions=EMOTIONS,
    test_sentence=0,
    n_components=8,
    seed=0,
) -> None:
    """data/features/{clips,landmarks,mfcc}.parquet and models/pca.json under `root`.

    Mouth opening o(t) drives MFCC c1..c4 (so audio predicts the lips) and opens the lower lip and jaw;
    each emotion shifts MFCC c5..c12 (so audio predicts the emotion) and the brows, eyes and mouth corners
    (scaled by the level).
    """
    rng = np.random.default_rng(seed)
    face = template_face()
    lower = np.r_[np.arange(5, 12), np.arange(54, 60), np.arange(65, 68)]  # jaw bottom, lower lips
    emotion_audio = rng.normal(0, 1.0, (len(EMOTIONS), N_MFCC - 5))
    emotion_face = np.zeros((len(EMOTIONS), 68, 2), np.float32)  # brows, eyes and mouth corners, as faces do
    expressive = np.r_[np.arange(17, 27), np.arange(36, 48), 48, 54]
    emotion_face[:, expressive] = rng.normal(0, 0.015, (len(EMOTIONS), len(expressive), 2))
    clip_rows, lm_rows, mfcc_rows = [], [], []
    for actor in actors:
        actor_face = face + rng.normal(0, 0.01, face.shape).astype(np.float32)
        for emotion in emotions:
            e = EMOTIONS.index(emotion)
            for level in levels_for(emotion):
                for sentence in range(sentences):
                    n = int(rng.integers(frames[0], frames[1] + 1))
                    m = 4 * n + int(rng.integers(-1, 2))
                    times = np.arange(m) / 4.0
                    phase, speed = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.25, 0.5, 2)
                    opening = (
                        0.5 + 0.25 * np.sin(speed[0] * times + phase[0]) + 0.25 * np.sin(speed[1] * times + phase[1])
                    )
                    coefficients = rng.normal(0, 0.3, (m, N_MFCC))
                    coefficients[:, 0] += 10.0
                    coefficients[:, 1:5] += 3.0 * opening[:, None] * np.array([1.0, -0.5, 0.8, 0.3])
                    coefficients[:, 5:] += emotion_audio[e]
                    video_opening = opening[np.minimum(np.arange(n) * 4 + 2, m - 1)]
                    points = np.repeat((actor_face + emotion_face[e] * level)[None], n, 0)
                    points[:, lower, 1] += 0.08 * video_opening[:, None]
                    points += rng.normal(0, 0.002, points.shape).astype(np.float32)
                    clip_id = f"{actor}_{emotion}_{level}_{sentence:03d}"
                    split = "test" if sentence == test_sentence else "train"
                    clip_rows.append(
                        dict(
                            clip_id=clip_id,
                            actor=actor,
                            emotion=emotion,
                            level=level,
                            sentence=sentence,
                            n_frames=n,
                            n_mfcc_frames=m,
                            split=split,
                            box_left=0.0,
                            box_top=0.0,
                            box_size=100.0,
                            detection_rate=1.0,
                            faces_max=1,
                            status="ok",
                            reason="",
                        )
                    )
                    px = points * CROP
                    for t in range(n):
                        row = {"clip_id": clip_id, "frame": t, "interpolated": False}
                        row.update({f"x{i}": px[t, i, 0] for i in range(68)})
                        row.update({f"y{i}": px[t, i, 1] for i in range(68)})
                        lm_rows.append(row)
                    for k in range(m):
                        mfcc_rows.append(
                            {
                                "clip_id": clip_id,
                                "mfcc_frame": k,
                                **{f"c{i}": coefficients[k, i] for i in range(N_MFCC)},
                            }
                        )
    features = root / paths.FEATURES
    features.mkdir(parents=True, exist_ok=True)
    for rows, sch, path in (
        (clip_rows, schema.CLIP_SCHEMA, schema.clips_path(features)),
        (lm_rows, schema.LANDMARK_SCHEMA, schema.landmarks_path(features)),
        (mfcc_rows, schema.mfcc_schema(N_MFCC), schema.mfcc_path(features)),
    ):
        pq.write_table(pa.Table.from_pandas(pd.DataFrame(rows), schema=sch, preserve_index=False), path)
    landmarks = pd.DataFrame(lm_rows)
    flat = (schema.landmarks_array(landmarks) / CROP).reshape(len(landmarks), -1)
    mean = flat.mean(0)
    _, s, vt = np.linalg.svd(flat - mean, full_matrices=False)
    ratio = (s**2 / (s**2).sum())[:n_components]
    (root / paths.MODELS).mkdir(parents=True, exist_ok=True)
    (root / paths.PCA_MODEL).write_text(
        json.dumps(
            {
                "mean": mean.tolist(),
                "components": vt[:n_components].tolist(),
                "explained_variance_ratio": ratio.tolist(),
                "crop_size": CROP,
                "n_components": n_components,
            }
        )
    )


TINY = {
    "mfcc_window": 12,
    "feature_dim": 16,
    "landmark_dim": 32,
    "memory_size": 8,
    "lstm_hidden": 32,
    "lstm_layers": 1,
    "sequence_len": 12,
    "epochs": 3,
    "batch_size": 8,
    "lr": 3.0e-3,
    "lr_decay": 0.95,
    "seed": 0,
    "checkpoint_every": 1,
}


def tiny_params(**stage1_overrides) -> dict:
    """The repository's params.yaml with a tiny stage1 section (the real sections otherwise)."""
    params = read_params(REPO / "params.yaml")
    params["stage1"] = {**params["stage1"], **TINY, **stage1_overrides}
    return params


@pytest.fixture
def features_dir(tmp_path, monkeypatch) -> Path:
    write_features(tmp_path, sentences=2, emotions=("angry", "happy", "neutral", "sad"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def saved_weights(root: Path) -> dict:
    return torch.load(root / paths.STAGE1_MODEL, weights_only=True)["state_dict"]


# --- modules -------------------------------------------------------------------------------------------


def test_shapes_through_every_module():
    x = torch.randn(3, 10, 12 * N_MFCC)
    assert MemoryUnits(16, 8)(torch.randn(3, 10, 16)).shape == (3, 10, 16)
    f_e, logits = MSEF(12 * N_MFCC, 16, 8, 8)(x)
    assert f_e.shape == (3, 10, 16) and logits.shape == (3, 10, 8)
    assert Audio2Lm(40, 32, 2)(torch.randn(3, 10, 40)).shape == (3, 10, 68, 2)
    for msef in (True, False):
        arch = Stage1Architecture(N_MFCC, 12, 16, 32, 8, 32, 1, msef)
        out = Stage1Model(arch)(torch.randn(3, 10, 12, N_MFCC), torch.rand(3, 68, 2))
        assert out.landmarks.shape == (3, 10, 68, 2)
        assert (out.emotion_logits.shape == (3, 10, 8)) if msef else out.emotion_logits is None


def test_untrained_model_holds_the_reference_still():
    model = Stage1Model(Stage1Architecture(N_MFCC, 12, 16, 32, 8, 32, 1))
    reference = torch.rand(2, 68, 2)
    out = model(torch.randn(2, 5, 12, N_MFCC), reference)
    torch.testing.assert_close(out.landmarks, reference[:, None].expand(-1, 5, -1, -1))


def test_eq1_residual_zero_memory_leaves_f_unchanged():
    msef = MSEF(12 * N_MFCC, 16, 8, 8)
    x = torch.randn(2, 7, 12 * N_MFCC)
    f_e, _ = msef(x)
    assert not torch.allclose(f_e, msef.encoder(x))  # the memory does contribute normally
    with torch.no_grad():
        msef.memory.m2.weight.zero_()
    f_e, _ = msef(x)
    torch.testing.assert_close(f_e, msef.encoder(x))


def test_double_normalisation_sums_to_one_over_memory_slots():
    memory = MemoryUnits(16, 8)
    with torch.no_grad():
        memory.m2.weight.fill_(1.0)  # output = sum over slots of the attention
    out = memory(torch.randn(2, 9, 16) * 5)
    torch.testing.assert_close(out, torch.ones_like(out))


def test_memory_mixes_tokens_within_a_sequence_only():
    memory = MemoryUnits(16, 8)
    a, b = torch.randn(1, 6, 16), torch.randn(1, 6, 16)
    alone = memory(a)
    together = memory(torch.cat([a, b]))[:1]
    torch.testing.assert_close(alone, together)
    changed = a.clone()
    changed[0, 5] += 3.0
    assert not torch.allclose(memory(changed)[0, 0], alone[0, 0])  # the softmax runs over the frames


# --- losses (eq. 2-4) --------------------------------------------------------------------------------------


def test_landmark_and_lip_losses_on_known_offsets():
    real = torch.zeros(2, 3, 68, 2)
    fake = real + 0.5
    assert landmark_loss(fake, real).item() == pytest.approx(0.25)
    lips_only = real.clone()
    lips_only[..., 48:68, :] = 1.0
    assert lip_loss(lips_only, real).item() == pytest.approx(1.0)
    assert landmark_loss(lips_only, real).item() == pytest.approx(20 / 68)


def test_pca_loss_projects_onto_components():
    components = torch.zeros(2, 136)
    components[0, 0] = 1.0  # x0
    components[1, 3] = 1.0  # y1
    real = torch.zeros(1, 68, 2)
    fake = real.clone()
    fake[0, 0, 0] = 2.0  # x0: seen by component 0
    fake[0, 5, 1] = 7.0  # y5: outside both components
    assert pca_loss(fake, real, components).item() == pytest.approx(4.0 / 2)


def test_emotion_classification_loss_matches_eq2():
    logits = torch.zeros(4, 8)
    assert emotion_classification_loss(logits, torch.tensor([0, 1, 2, 3])).item() == pytest.approx(math.log(2))
    confident = torch.full((1, 8), -20.0)
    confident[0, 3] = 20.0
    assert emotion_classification_loss(confident, torch.tensor([3])).item() == pytest.approx(0.0, abs=1e-6)
    y_hat = torch.sigmoid(torch.tensor([1.5]))  # one class, positive: -ln(y_hat)
    value = emotion_classification_loss(torch.tensor([[1.5, -100.0]]), torch.tensor([0]))
    assert value.item() == pytest.approx(float(-torch.log(y_hat)) / 2, rel=1e-5)


def test_joint_loss_weights_each_term_eq4():
    components = torch.eye(136)[:4]
    real = torch.zeros(1, 2, 68, 2)
    fake = real + 0.1
    logits = torch.zeros(1, 2, 8)
    labels = torch.zeros(1, 2, dtype=torch.long)
    total, terms = joint_loss(fake, real, components, LossWeights(2.0, 3.0, 5.0), logits, labels)
    expected = terms["pca"] + 2 * terms["landmark"] + 3 * terms["lip"] + 5 * terms["ec"]
    assert total.item() == pytest.approx(expected.item())
    assert terms["ec"].item() == pytest.approx(math.log(2))
    _, without = joint_loss(fake, real, components, LossWeights())
    assert "ec" not in without


def test_gamma_zero_gives_the_classifier_no_gradient():
    model = Stage1Model(Stage1Architecture(N_MFCC, 12, 16, 32, 8, 32, 1))
    real = torch.rand(2, 6, 68, 2)
    out = model(torch.randn(2, 6, 12, N_MFCC), real[:, 0])
    labels = torch.zeros(2, 6, dtype=torch.long)
    total, _ = joint_loss(
        out.landmarks + 0.01, real, torch.eye(136)[:4], LossWeights(gamma=0.0), out.emotion_logits, labels
    )
    total.backward()
    grad = model.msef.classifier.weight.grad
    assert grad is None or torch.count_nonzero(grad) == 0
    assert torch.count_nonzero(model.audio2lm.fc.weight.grad) > 0  # the landmark terms do train


# --- data --------------------------------------------------------------------------------------------------


def test_mfcc_windows_are_centred_and_repeat_edges():
    mfcc = np.arange(20, dtype=np.float32)[:, None]  # 5 video frames of 4 MFCC frames
    windows = mfcc_windows(mfcc, 5, 8)
    assert windows.shape == (5, 8, 1)
    np.testing.assert_array_equal(windows[2, :, 0], np.arange(6, 14))  # centred on 4*2 + 2 = 10
    np.testing.assert_array_equal(windows[0, :, 0], [0, 0, 0, 1, 2, 3, 4, 5])  # centre 2, -2 and -1 repeat 0
    np.testing.assert_array_equal(windows[4, :, 0], [14, 15, 16, 17, 18, 19, 19, 19])


def test_training_windows_cover_every_frame_and_batches_keep_equal_lengths():
    windows = training_windows([30, 8, 12], 12)
    covered = {(w.clip, w.start + i) for w in windows for i in range(w.length)}
    assert covered == {(c, t) for c, n in enumerate([30, 8, 12]) for t in range(n)}
    assert all(w.start + w.length <= [30, 8, 12][w.clip] for w in windows)
    groups = batches(windows, 3, np.random.default_rng(0))
    assert sorted(id(w) for g in groups for w in g) == sorted(id(w) for w in windows)
    assert all(len({w.length for w in g}) == 1 and len(g) <= 3 for g in groups)


# --- config -------------------------------------------------------------------------------------------------


def test_load_config_accepts_int_gamma_and_rejects_typos():
    params = tiny_params()
    params["loss"] = {**params["loss"], "gamma": 1}
    config = stage1.load_config(params)
    assert isinstance(config.loss.gamma, float) and config.loss.gamma == 1.0
    assert config.msef is True
    with pytest.raises(ConfigError, match="gama"):
        stage1.load_config({**params, "loss": {"gama": 10}})
    with pytest.raises(ConfigError, match="model.msef"):
        stage1.load_config({**params, "model": {"msef": "yes"}})
    with pytest.raises(ConfigError, match="stage1.epochs"):
        stage1.load_config(tiny_params(epochs=0))


def test_repository_params_load():
    config = stage1.load_config(read_params(REPO / "params.yaml"))
    assert config.stage1.mfcc_window == 28 and config.stage1.feature_dim == 128


# --- the stage --------------------------------------------------------------------------------------------


def test_stage_entry_point_writes_model_metrics_plots_and_predicts(features_dir):
    stage1.run(stage1.load_config(tiny_params()))
    for out in (paths.STAGE1_MODEL, stage1.METRICS_FILE, stage1.PLOT_CSV, stage1.PLOT_PNG):
        assert (features_dir / out).is_file(), out
    assert not (features_dir / stage1.CHECKPOINT).exists()  # removed after success
    metrics = json.loads((features_dir / stage1.METRICS_FILE).read_text())
    for key in (
        "val_loss_landmark",
        "val_landmark_distance_px",
        "val_lip_distance_px",
        "val_emotion_accuracy_frame",
        "val_emotion_accuracy_clip",
        "baseline_still_landmark_distance_px",
        "baseline_still_lip_distance_px",
    ):
        assert math.isfinite(metrics[key]), key
    assert metrics["baseline_still_lip_distance_px"] > 0
    history = pd.read_csv(features_dir / stage1.PLOT_CSV)
    assert list(history["epoch"]) == [1, 2, 3]
    for term in ("pca", "landmark", "lip", "ec", "joint"):
        assert {f"train_{term}", f"val_loss_{term}"} <= set(history.columns)
    assert (features_dir / stage1.PLOT_PNG).read_bytes()[:4] == b"\x89PNG"

    predictor = stage1.Stage1Predictor.load(features_dir / paths.STAGE1_MODEL)
    assert (predictor.n_mfcc, predictor.crop_size) == (N_MFCC, CROP)
    mfcc = np.random.default_rng(0).normal(size=(83, N_MFCC)).astype(np.float32)
    reference = template_face() * CROP
    landmarks = predictor.predict_landmarks(mfcc, reference, 21)
    assert landmarks.shape == (21, 68, 2) and np.isfinite(landmarks).all()
    assert np.abs(landmarks - reference).mean() < CROP * 0.1  # crop px, near the reference
    probabilities = predictor.predict_emotion(mfcc, 21)
    assert probabilities.shape == (8,) and ((probabilities >= 0) & (probabilities <= 1)).all()
    with pytest.raises(InputError, match="expected"):
        predictor.predict_landmarks(mfcc[:, :5], reference, 21)


def test_training_learns_the_synthetic_audio_to_mouth_relation(tmp_path, monkeypatch):
    write_features(tmp_path, sentences=3, frames=(40, 56), emotions=("angry", "happy", "neutral", "sad"))
    monkeypatch.chdir(tmp_path)
    small = {
        "epochs": 15,
        "batch_size": 8,
        "sequence_len": 24,
        "lstm_hidden": 64,
        "feature_dim": 32,
        "landmark_dim": 64,
    }
    stage1.run(stage1.load_config(tiny_params(**small)))
    metrics = json.loads((tmp_path / stage1.METRICS_FILE).read_text())
    # measured 0.77 of the held-still lip distance with this small net; the default net reaches ~0.3
    assert metrics["val_lip_distance_px"] < 0.85 * metrics["baseline_still_lip_distance_px"]
    assert metrics["val_emotion_accuracy_clip"] > 0.5  # 4 emotions: chance 0.25


def test_same_seed_same_weights(tmp_path, monkeypatch):
    weights = []
    for name in ("a", "b"):
        write_features(tmp_path / name, sentences=2, emotions=("angry", "sad"))
        monkeypatch.chdir(tmp_path / name)
        stage1.run(stage1.load_config(tiny_params(epochs=2)))
        weights.append(saved_weights(tmp_path / name))
    assert weights[0].keys() == weights[1].keys()
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=0, atol=0)


def _nan_at_epoch(monkeypatch, bad_epoch: int) -> None:
    real_train_epoch = stage1.train_epoch

    def train_epoch(model, optimizer, clips, config, components, epoch):
        if epoch == bad_epoch:
            with torch.no_grad():
                model.audio2lm.fc.bias.fill_(float("nan"))
        return real_train_epoch(model, optimizer, clips, config, components, epoch)

    monkeypatch.setattr(stage1, "train_epoch", train_epoch)


def test_nan_loss_stops_clearly_and_keeps_the_last_checkpoint_then_resumes(features_dir, monkeypatch, caplog):
    config = stage1.load_config(tiny_params(epochs=4))
    stage1.run(config)
    uninterrupted = saved_weights(features_dir)

    with monkeypatch.context() as patch:
        _nan_at_epoch(patch, 3)
        with pytest.raises(TrainingDivergedError, match=r"epoch 3 .*non-finite.*data/checkpoints/stage1.pt"):
            stage1.run(config)
    state = torch.load(features_dir / stage1.CHECKPOINT, weights_only=False)
    assert state["epoch"] == 2
    assert not (features_dir / paths.STAGE1_MODEL).exists()  # no output from a diverged run

    with caplog.at_level(logging.INFO, logger="emohead"):
        stage1.run(config)  # resumes after epoch 2 and lands on the uninterrupted run's weights
    assert "resumed after epoch 2" in caplog.text
    resumed = saved_weights(features_dir)
    for key in uninterrupted:
        torch.testing.assert_close(resumed[key], uninterrupted[key], rtol=0, atol=0)
    assert len(pd.read_csv(features_dir / stage1.PLOT_CSV)) == 4


def test_checkpoint_of_another_config_is_not_resumed(features_dir, monkeypatch, caplog):
    with monkeypatch.context() as patch:
        _nan_at_epoch(patch, 2)
        with pytest.raises(TrainingDivergedError):
            stage1.run(stage1.load_config(tiny_params()))
    assert (features_dir / stage1.CHECKPOINT).exists()
    with caplog.at_level(logging.INFO, logger="emohead"):
        stage1.run(stage1.load_config(tiny_params(seed=1)))
    assert "starting fresh" in caplog.text and "resumed" not in caplog.text


def test_without_msef_no_classifier_and_no_ec(features_dir):
    params = tiny_params(epochs=1)
    params["model"] = {**params["model"], "msef": False}
    stage1.run(stage1.load_config(params))
    metrics = json.loads((features_dir / stage1.METRICS_FILE).read_text())
    assert "val_emotion_accuracy_clip" not in metrics and "val_loss_ec" not in metrics
    predictor = stage1.Stage1Predictor.load(features_dir / paths.STAGE1_MODEL)
    assert predictor.predict_landmarks(np.zeros((40, N_MFCC)), template_face() * CROP, 10).shape == (10, 68, 2)
    with pytest.raises(InputError, match="msef"):
        predictor.predict_emotion(np.zeros((40, N_MFCC)), 10)


# --- bad inputs ---------------------------------------------------------------------------------------------


def test_missing_features_and_pca_are_clear_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match=r"pca\.json.*dvc repro pca"):
        stage1.run(stage1.load_config(tiny_params()))
    write_features(tmp_path, sentences=2, emotions=("angry",))
    (tmp_path / schema.mfcc_path(paths.FEATURES)).unlink()
    with pytest.raises(InputError, match=r"mfcc\.parquet.*dvc repro features"):
        stage1.run(stage1.load_config(tiny_params()))


def test_missing_emotion_trains_with_a_warning_naming_it(features_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="emohead"):
        stage1.run(stage1.load_config(tiny_params(epochs=1)))
    assert "contempt" in caplog.text and "surprised" in caplog.text
    assert (features_dir / paths.STAGE1_MODEL).is_file()
