"""Stage 1 of Figure 1: E_Lm, E_A, MSEF -> Audio2Lm (LSTM + FC) -> landmarks per frame.

Audio2Lm predicts each frame's DISPLACEMENT from the reference landmarks, not absolute positions: the
identity's face shape (and the clip's expression at frame 0) comes for free from the reference, so the net
only has to learn motion, as MakeItTalk's content branch does. The last FC starts at zero, so an untrained
model holds the reference still: training starts from that baseline and only ever improves on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from emohead.features.schema import N_POINTS
from emohead.models.msef import MSEF, mlp

MOTION_SCALE = 0.01  # the FC predicts motion in percent of the crop side: O(1) outputs, not O(0.01)


@dataclass(frozen=True)
class Stage1Architecture:
    """Sizes that rebuild the network from a checkpoint (params.yaml stage1 + model.msef)."""

    n_mfcc: int
    mfcc_window: int  # MFCC frames per video frame
    feature_dim: int = 128  # f and E_A
    landmark_dim: int = 512  # E_Lm
    memory_size: int = 64
    lstm_hidden: int = 256
    lstm_layers: int = 2
    msef: bool = True
    n_emotions: int = 8


class Audio2Lm(nn.Module):
    """[E_Lm, E_A, f_e] per frame -> LSTM over the clip's frames -> FC -> (B, T, 68, 2) displacements
    in normalised crop coordinates."""

    def __init__(self, in_dim: int, hidden: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, hidden, num_layers=layers, batch_first=True)
        self.fc = nn.Linear(hidden, N_POINTS * 2)
        nn.init.zeros_(self.fc.weight)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(x)
        return MOTION_SCALE * self.fc(hidden).unflatten(-1, (N_POINTS, 2))


@dataclass
class Stage1Output:
    landmarks: torch.Tensor  # (B, T, 68, 2), normalised crop coordinates
    emotion_logits: torch.Tensor | None  # (B, T, 8); None without MSEF


class Stage1Model(nn.Module):
    """MFCC windows (B, T, window, n_mfcc) + reference landmarks (B, 68, 2) -> Stage1Output."""

    def __init__(self, arch: Stage1Architecture):
        super().__init__()
        self.arch = arch
        audio_dim = arch.mfcc_window * arch.n_mfcc
        self.audio_encoder = mlp(audio_dim, 256, arch.feature_dim)  # E_A
        self.landmark_encoder = mlp(N_POINTS * 2, 256, arch.landmark_dim)  # E_Lm
        self.msef = MSEF(audio_dim, arch.feature_dim, arch.memory_size, arch.n_emotions) if arch.msef else None
        lstm_in = arch.landmark_dim + arch.feature_dim + (arch.feature_dim if arch.msef else 0)
        self.audio2lm = Audio2Lm(lstm_in, arch.lstm_hidden, arch.lstm_layers)

    def forward(self, mfcc_windows: torch.Tensor, reference: torch.Tensor) -> Stage1Output:
        audio = mfcc_windows.flatten(2)  # (B, T, window * n_mfcc)
        frames = audio.shape[1]
        # Centred on the crop and scaled to about +-1 (a face fills ~half the crop): unbiased MLP inputs.
        identity = self.landmark_encoder(4.0 * (reference.flatten(1) - 0.5))  # (B, 512): x0, y0, x1, y1, ...
        parts = [identity.unsqueeze(1).expand(-1, frames, -1), self.audio_encoder(audio)]
        logits = None
        if self.msef is not None:
            f_e, logits = self.msef(audio)
            parts.append(f_e)
        displacement = self.audio2lm(torch.cat(parts, dim=-1))
        return Stage1Output(reference.unsqueeze(1) + displacement, logits)
