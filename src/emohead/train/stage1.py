"""DVC stage `train_stage1`: train MSEF + Audio2Lm on data/features, write models/stage1.pt and its metrics.

Also the inference side (`Stage1Predictor`) that `emohead generate` and the evaluate stage load.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from emohead import paths
from emohead.atomic import atomic_path, remove_stale, write_json, write_text
from emohead.config import from_dict
from emohead.data.layout import EMOTIONS
from emohead.errors import ConfigError, InputError
from emohead.features.schema import MOUTH, N_POINTS
from emohead.models.audio2lm import Stage1Architecture, Stage1Model
from emohead.tracking import stage_run
from emohead.train import common
from emohead.train.stage1_data import (
    Clip,
    MfccNormaliser,
    PcaBasis,
    batches,
    load_clips,
    mfcc_windows,
    read_pca,
    split_clips,
    training_windows,
)
from emohead.train.stage1_losses import LossWeights, joint_loss

log = logging.getLogger(__name__)

CHECKPOINT = paths.CHECKPOINTS / "stage1.pt"
METRICS_FILE = paths.METRICS / "train1.json"
PLOT_CSV = paths.PLOTS / "train1.csv"
PLOT_PNG = paths.PLOTS / "train1_landmarks.png"
MODEL_FORMAT = "emohead.stage1/1"


@dataclass(frozen=True)
class Stage1Params:
    """params.yaml `stage1:` section (see its comments)."""

    mfcc_window: int = 28
    feature_dim: int = 128
    landmark_dim: int = 512
    memory_size: int = 64
    lstm_hidden: int = 256
    lstm_layers: int = 2
    sequence_len: int = 32
    epochs: int = 30
    batch_size: int = 16
    lr: float = 1.0e-3
    lr_decay: float = 0.97
    seed: int = 0
    checkpoint_every: int = 5
    random_reference: bool = True

    def __post_init__(self) -> None:
        positive = (
            "mfcc_window",
            "feature_dim",
            "landmark_dim",
            "memory_size",
            "lstm_hidden",
            "lstm_layers",
            "sequence_len",
            "epochs",
            "batch_size",
            "checkpoint_every",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"stage1.{name}: must be at least 1, got {getattr(self, name)}")
        if not self.lr > 0 or not 0 < self.lr_decay <= 1:
            raise ConfigError(f"stage1: need lr > 0 and 0 < lr_decay <= 1, got {self.lr}, {self.lr_decay}")


@dataclass(frozen=True)
class Stage1Config:
    stage1: Stage1Params
    loss: LossWeights
    msef: bool = True  # model.msef: false is the paper's "w/o MSEF" ablation


def load_config(params: dict) -> Stage1Config:
    """Sections stage1, loss and the key model.msef of params.yaml."""
    model = params.get("model") or {}
    if not isinstance(model, dict):
        raise ConfigError(f"model: expected a mapping, got {model!r}")
    msef = model.get("msef", True)
    if not isinstance(msef, bool):
        raise ConfigError(f"model.msef: expected true or false, got {msef!r}")
    return Stage1Config(
        stage1=from_dict(Stage1Params, params.get("stage1"), "stage1"),
        loss=from_dict(LossWeights, params.get("loss"), "loss"),
        msef=msef,
    )


def architecture(config: Stage1Config, n_mfcc: int) -> Stage1Architecture:
    p = config.stage1
    return Stage1Architecture(
        n_mfcc,
        p.mfcc_window,
        p.feature_dim,
        p.landmark_dim,
        p.memory_size,
        p.lstm_hidden,
        p.lstm_layers,
        config.msef,
        len(EMOTIONS),
    )


# --- tensors -------------------------------------------------------------------------------------------


@dataclass
class ClipTensors:
    """One clip ready for the network: standardised MFCC windows, normalised landmarks, label."""

    clip_id: str
    windows: torch.Tensor  # (T, window, n_mfcc)
    landmarks: torch.Tensor  # (T, 68, 2)
    emotion: int

    @classmethod
    def of(cls, clip: Clip, normaliser: MfccNormaliser, window: int) -> ClipTensors:
        windows = mfcc_windows(normaliser(clip.mfcc), clip.n_frames, window)
        return cls(clip.clip_id, torch.from_numpy(windows), torch.from_numpy(clip.landmarks.copy()), clip.emotion)


def _batch(clips: list[ClipTensors], windows: list, reference_frames: list[int]) -> tuple[torch.Tensor, ...]:
    mfcc = torch.stack([clips[w.clip].windows[w.start : w.start + w.length] for w in windows])
    real = torch.stack([clips[w.clip].landmarks[w.start : w.start + w.length] for w in windows])
    reference = torch.stack([clips[w.clip].landmarks[f] for w, f in zip(windows, reference_frames, strict=True)])
    labels = torch.tensor([clips[w.clip].emotion for w in windows]).unsqueeze(1).expand(-1, real.shape[1])
    return mfcc, reference, real, labels


# --- training --------------------------------------------------------------------------------------------


def config_hash(config: Stage1Config, clips: list[Clip]) -> str:
    """Config and the clip list: a checkpoint resumes only the run that wrote it."""
    data = [(c.clip_id, c.split, c.n_frames) for c in clips]
    blob = json.dumps({"config": dataclasses.asdict(config), "clips": data}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def train_epoch(
    model: Stage1Model,
    optimizer: torch.optim.Optimizer,
    clips: list[ClipTensors],
    config: Stage1Config,
    components: torch.Tensor,
    epoch: int,
) -> dict[str, float]:
    """One pass over the training windows; batch order depends on (seed, epoch) alone: a resume repeats it."""
    p = config.stage1
    model.train()
    rng = np.random.default_rng([p.seed, epoch])
    windows = training_windows([c.windows.shape[0] for c in clips], p.sequence_len)
    sums: dict[str, float] = {}
    count = 0
    for step, batch in enumerate(batches(windows, p.batch_size, rng)):
        if p.random_reference:  # any frame of the clip: many more distinct references than clips
            frames = [int(rng.integers(clips[w.clip].windows.shape[0])) for w in batch]
        else:
            frames = [0] * len(batch)
        mfcc, reference, real, labels = _batch(clips, batch, frames)
        out = model(mfcc, reference)
        total, terms = joint_loss(out.landmarks, real, components, config.loss, out.emotion_logits, labels)
        values = {k: float(v.detach()) for k, v in terms.items()}
        common.check_finite(values, f"train_stage1 epoch {epoch} step {step}", CHECKPOINT)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v * len(batch)
        count += len(batch)
    return {k: v / count for k, v in sums.items()}


def _distances_px(fake: np.ndarray, real: np.ndarray, crop_size: int, centred: bool) -> tuple[float, float]:
    """Mean per-point Euclidean distance in crop px over all 68 points and over the lips (48-67)."""

    def one(points: slice) -> float:
        a, b = fake[..., points, :], real[..., points, :]
        if centred:  # each set on its own centroid, as M-LMD/F-LMD do
            a = a - a.mean(axis=-2, keepdims=True)
            b = b - b.mean(axis=-2, keepdims=True)
        return float(np.linalg.norm(a - b, axis=-1).mean() * crop_size)

    return one(slice(None)), one(MOUTH)


@torch.no_grad()
def evaluate(
    model: Stage1Model,
    clips: list[ClipTensors],
    config: Stage1Config,
    components: torch.Tensor,
    crop_size: int,
) -> tuple[dict[str, float], list[np.ndarray]]:
    """Whole test clips, one at a time: loss terms, distances in px, emotion accuracy; and the predictions."""
    model.eval()
    sums: dict[str, float] = {}
    frames = correct_frames = correct_clips = 0
    predictions, reals = [], []
    for clip in clips:
        out = model(clip.windows[None], clip.landmarks[None, 0])
        labels = torch.full((1, clip.windows.shape[0]), clip.emotion)
        _, terms = joint_loss(out.landmarks, clip.landmarks[None], components, config.loss, out.emotion_logits, labels)
        n = clip.windows.shape[0]
        for k, v in terms.items():
            sums[k] = sums.get(k, 0.0) + float(v) * n
        frames += n
        if out.emotion_logits is not None:
            logits = out.emotion_logits[0]
            correct_frames += int((logits.argmax(-1) == clip.emotion).sum())
            correct_clips += int(logits.mean(0).argmax() == clip.emotion)
        predictions.append(out.landmarks[0].numpy())
        reals.append(clip.landmarks.numpy())
    metrics = {f"loss_{k}": v / frames for k, v in sums.items()}
    fake, real = np.concatenate(predictions), np.concatenate(reals)
    metrics["landmark_distance_px"], metrics["lip_distance_px"] = _distances_px(fake, real, crop_size, False)
    metrics["landmark_distance_centred_px"], metrics["lip_distance_centred_px"] = _distances_px(
        fake, real, crop_size, True
    )
    if model.msef is not None:
        metrics["emotion_accuracy_frame"] = correct_frames / frames
        metrics["emotion_accuracy_clip"] = correct_clips / len(clips)
    return metrics, predictions


def still_baseline(clips: list[ClipTensors], crop_size: int) -> dict[str, float]:
    """Distances when the reference landmarks are simply held still for the whole clip."""
    fake = np.concatenate([np.broadcast_to(c.landmarks[:1].numpy(), c.landmarks.shape) for c in clips])
    real = np.concatenate([c.landmarks.numpy() for c in clips])
    names = (
        "landmark_distance_px",
        "lip_distance_px",
        "landmark_distance_centred_px",
        "lip_distance_centred_px",
    )
    values = _distances_px(fake, real, crop_size, False) + _distances_px(fake, real, crop_size, True)
    return {f"baseline_still_{n}": v for n, v in zip(names, values, strict=True)}


# --- outputs ----------------------------------------------------------------------------------------------


def save_model(path: Path, model: Stage1Model, config: Stage1Config, normaliser: MfccNormaliser, pca: PcaBasis) -> None:
    """Weights + the config they were trained with + all inference needs (plain types: weights_only loads)."""
    state = {
        "format": MODEL_FORMAT,
        "state_dict": model.state_dict(),
        "config": dataclasses.asdict(config),
        "architecture": dataclasses.asdict(model.arch),
        "mfcc_mean": normaliser.mean.tolist(),
        "mfcc_std": normaliser.std.tolist(),
        "n_mfcc": model.arch.n_mfcc,
        "mfcc_window": model.arch.mfcc_window,
        "crop_size": pca.crop_size,
        "pca_mean": pca.mean.tolist(),
        "pca_components": pca.components.tolist(),
        "emotions": list(EMOTIONS),
    }
    common.save_checkpoint(path, state)


def plot_landmarks(path: Path, predicted: np.ndarray, real: np.ndarray, clip_id: str, crop_size: int) -> None:
    """A few frames of one test clip: real (black) vs predicted (red) landmarks, in crop px."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = np.unique(np.linspace(0, len(real) - 1, 4).round().astype(int))
    fig, axes = plt.subplots(1, len(shown), figsize=(3 * len(shown), 3.3), squeeze=False)
    for ax, t in zip(axes[0], shown, strict=True):
        ax.scatter(*(real[t] * crop_size).T, s=6, c="black", label="real")
        ax.scatter(*(predicted[t] * crop_size).T, s=6, c="red", label="predicted")
        ax.set_xlim(0, crop_size)
        ax.set_ylim(crop_size, 0)  # image coordinates: y down
        ax.set_aspect("equal")
        ax.set_title(f"frame {t}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].legend(loc="lower left", fontsize=7)
    fig.suptitle(f"{clip_id}: real vs predicted landmarks", fontsize=10)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


# --- the stage --------------------------------------------------------------------------------------------


def _resume(model, optimizer, scheduler, digest: str) -> tuple[int, list[dict[str, Any]]]:
    """Load data/checkpoints/stage1.pt when it belongs to this config; returns (epochs done, history)."""
    state = common.load_checkpoint(CHECKPOINT)
    if state is None:
        return 0, []
    if state.get("config_hash") != digest:
        log.info("%s was written with another config or data; starting fresh", CHECKPOINT)
        return 0, []
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    common.set_rng_state(state["rng"])
    log.info("resumed after epoch %d", state["epoch"])
    return state["epoch"], state["history"]


def run(config: Stage1Config) -> None:
    """Train, validate each epoch, write models/stage1.pt, metrics/train1.json and plots/train1.*."""
    p = config.stage1
    remove_stale(paths.STAGE1_MODEL, METRICS_FILE, PLOT_CSV, PLOT_PNG)
    pca = read_pca(paths.PCA_MODEL)
    all_clips = load_clips(paths.FEATURES, pca.crop_size)
    train_clips, test_clips = split_clips(all_clips, paths.FEATURES)
    normaliser = MfccNormaliser.fit(train_clips)
    train = [ClipTensors.of(c, normaliser, p.mfcc_window) for c in train_clips]
    test = [ClipTensors.of(c, normaliser, p.mfcc_window) for c in test_clips]
    components = torch.from_numpy(pca.components)
    log.info("train_stage1: %d train clips, %d test clips, msef=%s", len(train), len(test), config.msef)

    common.seed_everything(p.seed)
    model = Stage1Model(architecture(config, train_clips[0].mfcc.shape[1]))
    optimizer = torch.optim.Adam(model.parameters(), lr=p.lr)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=p.lr_decay)
    digest = config_hash(config, all_clips)
    done, history = _resume(model, optimizer, scheduler, digest)
    baseline = still_baseline(test, pca.crop_size)
    started = time.perf_counter()

    with stage_run("train_stage1", config) as tracker:
        tracker.metrics({"train_clips": len(train), "test_clips": len(test), **baseline})
        for epoch in range(done + 1, p.epochs + 1):
            lr = optimizer.param_groups[0]["lr"]
            train_terms = train_epoch(model, optimizer, train, config, components, epoch)
            scheduler.step()
            val, _ = evaluate(model, test, config, components, pca.crop_size)
            row = {
                "epoch": epoch,
                "lr": lr,
                **{f"train_{k}": v for k, v in train_terms.items()},
                **{f"val_{k}": v for k, v in val.items()},
            }
            history.append(row)
            tracker.metrics({k: v for k, v in row.items() if k != "epoch"}, step=epoch)
            log.info(
                "epoch %d/%d: train joint %.4g, val lip %.2f px",
                epoch,
                p.epochs,
                train_terms["joint"],
                val["lip_distance_px"],
            )
            if epoch % p.checkpoint_every == 0 and epoch < p.epochs:
                state = {
                    "config_hash": digest,
                    "epoch": epoch,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "rng": common.rng_state(),
                    "history": history,
                }
                common.save_checkpoint(CHECKPOINT, state)

        val, predictions = evaluate(model, test, config, components, pca.crop_size)
        metrics = {f"val_{k}": v for k, v in val.items()} | baseline
        for name in ("landmark_distance_px", "lip_distance_px"):
            metrics[f"val_{name.replace('_px', '')}_reduction"] = 1 - val[name] / max(
                baseline[f"baseline_still_{name}"], 1e-9
            )
        metrics |= {
            "epochs": p.epochs,
            "train_clips": len(train),
            "test_clips": len(test),
            "train_seconds": time.perf_counter() - started,
        }
        save_model(paths.STAGE1_MODEL, model, config, normaliser, pca)
        write_json(METRICS_FILE, metrics)
        write_text(PLOT_CSV, pd.DataFrame(history).to_csv(index=False))
        plot_landmarks(PLOT_PNG, predictions[0], test[0].landmarks.numpy(), test[0].clip_id, pca.crop_size)
        tracker.metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        tracker.artifact(paths.STAGE1_MODEL)
        tracker.artifact(PLOT_PNG)
    CHECKPOINT.unlink(missing_ok=True)


# --- inference --------------------------------------------------------------------------------------------


class Stage1Predictor:
    """models/stage1.pt for inference: raw MFCC + reference landmarks (crop px) -> landmarks per frame."""

    def __init__(self, model: Stage1Model, normaliser: MfccNormaliser, crop_size: int, device: str = "cpu"):
        self.model = model.to(device).eval()
        self.normaliser = normaliser
        self.crop_size = crop_size
        self.n_mfcc = model.arch.n_mfcc
        self.mfcc_window = model.arch.mfcc_window
        self.has_emotion_classifier = model.msef is not None
        self.device = device

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> Stage1Predictor:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: stage 1 model not found; run `dvc repro train_stage1`")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            if state.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {state.get('format')!r}, expected {MODEL_FORMAT!r}")
            model = Stage1Model(Stage1Architecture(**state["architecture"]))
            model.load_state_dict(state["state_dict"])
        except Exception as exc:  # torch/pickle raise many types for a foreign or damaged file
            raise InputError(f"{path}: not a usable stage 1 model ({exc.__class__.__name__}: {exc})") from None
        normaliser = MfccNormaliser(
            np.asarray(state["mfcc_mean"], np.float32), np.asarray(state["mfcc_std"], np.float32)
        )
        return cls(model, normaliser, int(state["crop_size"]), device)

    def _windows(self, mfcc: np.ndarray, n_frames: int) -> torch.Tensor:
        mfcc = np.asarray(mfcc, np.float32)
        if mfcc.ndim != 2 or mfcc.shape[1] != self.n_mfcc or len(mfcc) == 0:
            raise InputError(f"MFCC of shape {mfcc.shape}: expected (n_mfcc_frames > 0, {self.n_mfcc})")
        if n_frames < 1:
            raise InputError(f"n_frames must be at least 1, got {n_frames}")
        windows = mfcc_windows(self.normaliser(mfcc), n_frames, self.mfcc_window)
        return torch.from_numpy(windows)[None].to(self.device)

    @torch.no_grad()
    def predict_landmarks(self, mfcc: np.ndarray, reference_landmarks: np.ndarray, n_frames: int) -> np.ndarray:
        """mfcc (n_mfcc_frames, n_mfcc) raw; reference (68, 2) crop px -> (n_frames, 68, 2) crop px."""
        reference = np.asarray(reference_landmarks, np.float32)
        if reference.shape != (N_POINTS, 2):
            raise InputError(f"reference landmarks of shape {reference.shape}: expected ({N_POINTS}, 2)")
        windows = self._windows(mfcc, n_frames)
        reference_t = torch.from_numpy(reference / self.crop_size)[None].to(self.device)
        out = self.model(windows, reference_t)
        return out.landmarks[0].cpu().numpy() * self.crop_size

    @torch.no_grad()
    def predict_emotion(self, mfcc: np.ndarray, n_frames: int) -> np.ndarray:
        """(8,) per-class sigmoid probabilities (eq. 2 trains each class on its own) of the clip-mean logits,
        in EMOTIONS order; argmax is the predicted emotion."""
        if not self.has_emotion_classifier:
            raise InputError("this stage 1 model was trained with model.msef: false and has no emotion classifier")
        _, logits = self.model.msef(self._windows(mfcc, n_frames).flatten(2))  # MSEF alone: audio only
        logits = logits[0].mean(0)
        return torch.sigmoid(logits).cpu().numpy()
