"""DVC stage `train_stage2`: train AATU (sec. 3.2) on frame pairs -> models/stage2.pt, metrics/train2.json.

Loss (eqs. 5-6): L1(generated, real) + perceptual.weight * sum_layers L1(VGG19(generated), VGG19(real)).
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from emohead import paths
from emohead.atomic import atomic_path, remove_stale, write_json, write_text
from emohead.config import as_flat_dict, from_dict
from emohead.errors import ConfigError, InputError
from emohead.features import schema
from emohead.metrics import psnr, ssim
from emohead.models.unet import AATU, TranslatorSpec
from emohead.models.vgg import PerceptualLoss, load_vgg19
from emohead.rendering import Stage2Renderer, draw_landmarks
from emohead.tracking import StageRun, stage_run
from emohead.train import common
from emohead.train.stage2_data import EvalFrame, FramePairs, evaluation_frames, load_clips

log = logging.getLogger(__name__)

CHECKPOINT = paths.CHECKPOINTS / "stage2.pt"
METRICS = paths.METRICS / "train2.json"
LOSS_CSV = paths.PLOTS / "train2.csv"
GRID_PNG = paths.PLOTS / "train2_grid.png"
GRID_ROWS = 4


@dataclass(frozen=True)
class TranslatorTraining:
    """params.yaml `stage2:`."""

    base_channels: int = 32
    depth: int = 5
    res_blocks: int = 1
    output: Literal["direct", "residual"] = "residual"
    steps: int = 300
    batch_size: int = 8
    lr: float = 1e-4
    lr_decay: float = 0.9995
    reference: Literal["same_clip", "same_emotion"] = "same_clip"
    seed: int = 0
    checkpoint_every: int = 100
    log_every: int = 25
    eval_frames: int = 256


@dataclass(frozen=True)
class PerceptualConfig:
    """params.yaml `perceptual:`."""

    weight: float = 1.0
    layers: tuple[str, ...] = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
    input_size: int = 64
    weights_path: str = "models/vgg19-dcbb9e9d.pth"
    missing: Literal["random", "error"] = "random"


@dataclass(frozen=True)
class Stage2Config:
    stage2: TranslatorTraining
    perceptual: PerceptualConfig
    cbam: bool = True  # params.yaml model.cbam

    @property
    def spec(self) -> TranslatorSpec:
        s = self.stage2
        return TranslatorSpec(s.base_channels, s.depth, s.res_blocks, attention=self.cbam, output=s.output)


def load_config(params: dict) -> Stage2Config:
    stage2 = from_dict(TranslatorTraining, params.get("stage2"), "stage2")
    perceptual = from_dict(PerceptualConfig, params.get("perceptual"), "perceptual")
    cbam = (params.get("model") or {}).get("cbam", True)
    if not isinstance(cbam, bool):
        raise ConfigError(f"model.cbam: expected true or false, got {cbam!r}")
    positive = {
        "steps": stage2.steps,
        "batch_size": stage2.batch_size,
        "depth": stage2.depth,
        "base_channels": stage2.base_channels,
        "checkpoint_every": stage2.checkpoint_every,
        "log_every": stage2.log_every,
        "eval_frames": stage2.eval_frames,
    }
    for key, value in positive.items():
        if value < 1:
            raise ConfigError(f"stage2.{key}: must be at least 1, got {value}")
    if stage2.res_blocks < 0:
        raise ConfigError(f"stage2.res_blocks: must be 0 or more, got {stage2.res_blocks}")
    return Stage2Config(stage2, perceptual, cbam)


def config_hash(config: Stage2Config, n_train_frames: int, crop_size: int) -> str:
    """A checkpoint resumes only the very same run: same knobs, same training data shape."""
    flat = as_flat_dict(config) | {"n_train_frames": n_train_frames, "crop_size": crop_size}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Trainer:
    """One optimisation step at a time; holds everything a checkpoint must restore."""

    def __init__(self, config: Stage2Config, pairs: FramePairs, device: torch.device):
        s = config.stage2
        self.config, self.pairs, self.device = config, pairs, device
        self.model = AATU(config.spec).to(device)
        vgg, self.perceptual_weights = load_vgg19(
            config.perceptual.layers, Path(config.perceptual.weights_path), config.perceptual.missing, s.seed
        )
        self.perceptual = PerceptualLoss(vgg).to(device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=s.lr)
        self.scheduler = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=s.lr_decay)
        self.rng = np.random.default_rng(s.seed)
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.data_seconds = 0.0
        self.compute_seconds = 0.0
        self._interval: list[dict[str, float]] = []

    def losses(self, generated: torch.Tensor, real: torch.Tensor) -> dict[str, torch.Tensor]:
        l1 = F.l1_loss(generated, real)  # eq. (5)
        size = self.config.perceptual.input_size
        if size and size != real.shape[-1]:  # VGG on a smaller copy: the CPU budget (see params.yaml)
            generated = F.interpolate(generated, size=(size, size), mode="bilinear", align_corners=False)
            real = F.interpolate(real, size=(size, size), mode="bilinear", align_corners=False)
        perceptual = self.perceptual(generated, real)  # eq. (6)
        return {"loss": l1 + self.config.perceptual.weight * perceptual, "l1": l1, "perceptual": perceptual}

    def train_step(self) -> dict[str, float]:
        started = time.perf_counter()
        batch = self.pairs.sample(self.config.stage2.batch_size, self.rng)
        loaded = time.perf_counter()
        self.model.train()
        generated = self.model(batch.inputs.to(self.device))
        losses = self.losses(generated, batch.targets.to(self.device))
        values = {k: float(v.detach()) for k, v in losses.items()}
        common.check_finite(values, f"train_stage2 step {self.step + 1}", CHECKPOINT)
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        self.data_seconds += loaded - started
        self.compute_seconds += time.perf_counter() - loaded
        self._interval.append(values)
        return values

    def close_interval(self) -> dict[str, float]:
        """Mean losses since the last log line, as one row of plots/train2.csv."""
        row = {
            "step": self.step,
            **{k: float(np.mean([v[k] for v in self._interval])) for k in self._interval[0]},
        }
        row["lr"] = self.scheduler.get_last_lr()[0]
        self.history.append(row)
        self._interval = []
        return row

    def state(self, digest: str) -> dict[str, Any]:
        return {
            "config_hash": digest,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng.bit_generator.state,
            "global_rng": common.rng_state(),
            "history": self.history,
            "seconds": (self.data_seconds, self.compute_seconds),
            "interval": self._interval,
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.step = state["step"]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.rng.bit_generator.state = state["rng"]
        common.set_rng_state(state["global_rng"])
        self.history = list(state["history"])
        self.data_seconds, self.compute_seconds = state["seconds"]
        self._interval = list(state["interval"])


def _resume(trainer: Trainer, digest: str) -> None:
    state = common.load_checkpoint(CHECKPOINT)
    if state is None:
        return
    if state.get("config_hash") != digest:
        log.warning("%s was written by a different configuration: starting afresh", CHECKPOINT)
        remove_stale(CHECKPOINT)
        return
    trainer.restore(state)
    log.info("resumed at step %d of %d", trainer.step, trainer.config.stage2.steps)


def _train(trainer: Trainer, run: StageRun, digest: str) -> None:
    s = trainer.config.stage2
    while trainer.step < s.steps:
        trainer.train_step()
        if trainer.step % s.log_every == 0 or trainer.step == s.steps:
            row = trainer.close_interval()
            run.metrics({k: v for k, v in row.items() if k != "step"}, step=trainer.step)
            log.info(
                "step %d/%d loss %.4f (l1 %.4f, perceptual %.4f)",
                trainer.step,
                s.steps,
                row["loss"],
                row["l1"],
                row["perceptual"],
            )
        if trainer.step % s.checkpoint_every == 0 and trainer.step < s.steps:
            common.save_checkpoint(CHECKPOINT, trainer.state(digest))


def _frame_scores(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    l1 = np.abs(real.astype(np.float64) - fake.astype(np.float64)).mean() / 255.0
    return {"l1": float(l1), "ssim": ssim(real, fake), "psnr": psnr(real, fake)}


def evaluate(renderer: Stage2Renderer, frames: list[EvalFrame]) -> tuple[dict[str, float | None], list]:
    """Test-split scores of frames rendered from ground-truth landmarks, and of copying the reference."""
    generated_scores, copy_scores, examples = [], [], []
    by_clip: dict[str, list[EvalFrame]] = {}
    for item in frames:
        by_clip.setdefault(item.clip.clip_id, []).append(item)
    for items in by_clip.values():
        clip = items[0].clip
        reference = np.asarray(clip.crops[0])
        indices = [item.frame for item in items]
        generated = renderer.render(clip.landmarks[indices], reference)
        for frame, fake in zip(indices, generated, strict=True):
            real = np.asarray(clip.crops[frame])
            generated_scores.append(_frame_scores(real, fake))
            copy_scores.append(_frame_scores(real, reference))
            examples.append((reference, clip.landmarks[frame], fake, real))
    metrics: dict[str, float | None] = {"eval_frames": len(generated_scores)}
    for prefix, scores in (("test", generated_scores), ("copy_reference", copy_scores)):
        for key in ("l1", "ssim", "psnr"):
            metrics[f"{prefix}_{key}"] = float(np.mean([s[key] for s in scores])) if scores else None
    return metrics, examples


def _grid_png(examples: list, size: int) -> bytes:
    """Rows of reference | landmark sketch | generated | real, as PNG bytes."""
    picks = np.linspace(0, len(examples), min(GRID_ROWS, len(examples)), endpoint=False).astype(int)
    rows = [
        np.hstack([ref, draw_landmarks(marks, size), fake, real])
        for ref, marks, fake, real in (examples[i] for i in picks)
    ]
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("cannot encode the training grid as PNG")
    return encoded.tobytes()


def _write_history(history: list[dict[str, float]]) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=["step", "loss", "l1", "perceptual", "lr"])
    writer.writeheader()
    writer.writerows(history)
    write_text(LOSS_CSV, buffer.getvalue())


def save_model(path: Path, trainer: Trainer) -> None:
    payload = {
        "format": Stage2Renderer.FORMAT,
        "spec": dataclasses.asdict(trainer.config.spec),
        "crop_size": trainer.pairs.crop_size,
        "state_dict": {k: v.cpu() for k, v in trainer.model.state_dict().items()},
        "config": as_flat_dict(trainer.config),
        "perceptual_weights": trainer.perceptual_weights,
        "steps": trainer.step,
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def run(config: Stage2Config) -> None:
    remove_stale(paths.STAGE2_MODEL, METRICS, LOSS_CSV, GRID_PNG)
    with stage_run("train_stage2", config) as run:
        common.seed_everything(config.stage2.seed)
        device = common.pick_device()
        clips = load_clips(paths.FEATURES)
        pairs = FramePairs(clips, config.stage2.reference)
        test_frames = evaluation_frames(clips, config.stage2.eval_frames)
        if not test_frames:
            raise InputError(
                f"{schema.clips_path(paths.FEATURES)}: no test clip with 2+ frames to score stage 2 on"
            )
        log.info(
            "training on %d frames of %d train clips at %d px (%s)",
            pairs.n_frames,
            len(pairs.clips),
            pairs.crop_size,
            device,
        )
        trainer = Trainer(config, pairs, device)
        run.tags({"perceptual_weights": trainer.perceptual_weights})
        run.params({"perceptual_weights": trainer.perceptual_weights, "train_frames": pairs.n_frames})
        digest = config_hash(config, pairs.n_frames, pairs.crop_size)
        _resume(trainer, digest)
        _train(trainer, run, digest)

        save_model(paths.STAGE2_MODEL, trainer)
        renderer = Stage2Renderer(trainer.model, pairs.crop_size, device)
        scores, examples = evaluate(renderer, test_frames)
        busy = trainer.data_seconds + trainer.compute_seconds
        metrics = {
            **scores,
            "perceptual_weights": trainer.perceptual_weights,
            "steps": trainer.step,
            "train_frames": pairs.n_frames,
            "final_loss": trainer.history[-1]["loss"],
            "data_seconds_per_step": trainer.data_seconds / trainer.step,
            "compute_seconds_per_step": trainer.compute_seconds / trainer.step,
            "data_loading_share": trainer.data_seconds / busy if busy else None,
        }
        write_json(METRICS, metrics)
        _write_history(trainer.history)
        run.metrics({k: v for k, v in metrics.items() if isinstance(v, int | float)})
        run.artifact(METRICS)
        run.artifact(LOSS_CSV)
        with atomic_path(GRID_PNG) as tmp:
            tmp.write_bytes(_grid_png(examples, pairs.crop_size))
        run.artifact(GRID_PNG)
        run.artifact(paths.STAGE2_MODEL)
        remove_stale(CHECKPOINT)
        log.info(
            "test PSNR %s dB, SSIM %s (copy the reference: %s dB, %s)",
            scores["test_psnr"],
            scores["test_ssim"],
            scores["copy_reference_psnr"],
            scores["copy_reference_ssim"],
        )
