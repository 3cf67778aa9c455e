"""MSEF, the Memory-Sharing Emotional Feature extractor (paper section 3.1, Figure 2).

MFCC window --MLP--> f --g--> M1 --DoubleNorm--> M2 --g--> (+ f) = f_e --classifier--> 8 emotion logits

Tokens: the frames of ONE sequence (B, T, C): the softmax of the double normalisation runs over that
sequence's T frames, never across the batch, so a clip's prediction does not depend on what else is in the
batch (training batches and single-clip inference agree). Sharing across samples comes from M1, M2 being
learned parameters every sequence reads ("external attention", Guo et al. 2021).
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """The paper's "simple MLP" encoders: two linear layers with a LeakyReLU between."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.LeakyReLU(0.2), nn.Linear(hidden_dim, out_dim))


def pointwise(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """g(.): a 1x1 Conv1d applied to (B, T, C) tokens (Conv1d wants channels first)."""
    return conv(x.transpose(1, 2)).transpose(1, 2)


class MemoryUnits(nn.Module):
    """M1, M2: two linear layers of `memory_size` slots, read with external attention's double norm."""

    def __init__(self, dim: int, memory_size: int):
        super().__init__()
        self.m1 = nn.Linear(dim, memory_size, bias=False)
        self.m2 = nn.Linear(memory_size, dim, bias=False)
        with torch.no_grad():  # EANet initialises M2 as M1's transpose
            self.m2.weight.copy_(self.m1.weight.t())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.m1(x)  # (B, T, S): each token against each memory slot
        attention = attention.softmax(dim=1)  # double norm, 1: softmax over the tokens (a sequence's frames)
        attention = attention / (1e-9 + attention.sum(dim=2, keepdim=True))  # 2: l1 over the memory slots
        return self.m2(attention)


class MSEF(nn.Module):
    """MFCC windows (B, T, window * n_mfcc) -> emotional features f_e (B, T, C), emotion logits (B, T, 8)."""

    def __init__(self, in_dim: int, feature_dim: int, memory_size: int, n_emotions: int, hidden_dim: int = 256):
        super().__init__()
        self.encoder = mlp(in_dim, hidden_dim, feature_dim)  # f
        self.g_in = nn.Conv1d(feature_dim, feature_dim, kernel_size=1)
        self.memory = MemoryUnits(feature_dim, memory_size)
        # No bias: a silent memory leaves f exactly unchanged (eq. 1's residual).
        self.g_out = nn.Conv1d(feature_dim, feature_dim, kernel_size=1, bias=False)
        self.classifier = nn.Linear(feature_dim, n_emotions)

    def forward(self, mfcc: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self.encoder(mfcc)
        f_e = f + pointwise(self.g_out, self.memory(pointwise(self.g_in, f)))  # eq. (1)
        return f_e, self.classifier(f_e)  # logits; eq. (2) applies the sigmoid
