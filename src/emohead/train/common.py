"""Helpers both training loops share: seeding, device, divergence checks, resumable checkpoints."""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emohead.atomic import atomic_path
from emohead.errors import TrainingDivergedError

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Same seed, same CPU run: seeds python, numpy and torch and asks torch for deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True, warn_only=True)


def pick_device() -> torch.device:
    """CUDA when present (never required), else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def check_finite(losses: dict[str, float], where: str, checkpoint: Path | None = None) -> None:
    """Stop with a clear message when any loss term is NaN/inf."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        kept = f"; the last good checkpoint is {checkpoint}" if checkpoint and checkpoint.exists() else ""
        terms = ", ".join(f"{k}={v}" for k, v in bad.items())
        raise TrainingDivergedError(
            f"{where}: loss became non-finite ({terms}); lower the learning rate or check the inputs{kept}"
        )


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic torch.save: a kill mid-write leaves the previous checkpoint intact."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    log.info("resuming from %s", path)
    return torch.load(path, map_location="cpu", weights_only=False)


def rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
