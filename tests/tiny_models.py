"""Tiny, untrained stage-1/stage-2 model files in the real checkpoint formats, for tests of generate/evaluate.

They are built with the real model classes at tiny sizes and saved by the stages' own save functions, so
loading them exercises the real `Stage1Predictor.load` / `Stage2Renderer.load`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

N_MFCC = 13


def make_stage1(path: Path, crop_size: int, msef: bool = True) -> Path:
    from emohead.models.audio2lm import Stage1Architecture, Stage1Model
    from emohead.train import stage1
    from emohead.train.stage1_data import MfccNormaliser, PcaBasis

    torch.manual_seed(0)
    arch = Stage1Architecture(N_MFCC, mfcc_window=28, feature_dim=8, landmark_dim=16, memory_size=4,
                              lstm_hidden=16, lstm_layers=1, msef=msef)
    model = Stage1Model(arch)
    config = stage1.load_config({"model": {"msef": msef}})
    normaliser = MfccNormaliser(np.zeros(N_MFCC, np.float32), np.full(N_MFCC, 50.0, np.float32))
    pca = PcaBasis(np.zeros(136, np.float32), np.eye(4, 136, dtype=np.float32), crop_size)
    stage1.save_model(path, model, config, normaliser, pca)
    return path


def make_stage2(path: Path, crop_size: int, cbam: bool = True) -> Path:
    from types import SimpleNamespace

    from emohead.models.unet import AATU
    from emohead.train import stage2

    torch.manual_seed(0)
    config = stage2.load_config({"stage2": {"base_channels": 4, "depth": 3, "res_blocks": 1}, "model": {"cbam": cbam}})
    # save_model reads these attributes of its Trainer; a stand-in keeps the fixture free of training.
    trainer = SimpleNamespace(
        config=config,
        pairs=SimpleNamespace(crop_size=crop_size),
        model=AATU(config.spec),
        perceptual_weights="random",
        step=0,
    )
    stage2.save_model(path, trainer)
    return path


def make_models(folder: Path, crop_size: int = 64, msef: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    make_stage1(folder / "stage1.pt", crop_size, msef)
    make_stage2(folder / "stage2.pt", crop_size)
    return folder
