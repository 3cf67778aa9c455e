"""CBAM (Woo et al., ECCV 2018): channel then spatial attention; AATU's attention block (sec. 3.2)."""

from __future__ import annotations

import torch
from torch import nn


class ChannelGate(nn.Module):
    """Which feature maps matter: shared MLP over avg- and max-pooled descriptors, summed, sigmoid."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)  # narrow layers (e.g. 8 channels) would otherwise get 0 units
        self.mlp = nn.Sequential(
            nn.Linear(channels, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, channels)
        )

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, 1, 1) weights in (0, 1)."""
        avg = self.mlp(x.mean(dim=(2, 3)))
        peak = self.mlp(x.amax(dim=(2, 3)))
        return torch.sigmoid(avg + peak)[:, :, None, None]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class SpatialGate(nn.Module):
    """Where to look: a 7x7 conv over the channel-wise max and mean maps, sigmoid."""

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        # As the official code: conv without bias + BatchNorm on the one-channel map.
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) weights in (0, 1)."""
        pooled = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.norm(self.conv(pooled)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class CBAM(nn.Module):
    """Sequential attention, channel first then spatial; same shape out as in."""

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelGate(channels, reduction)
        self.spatial = SpatialGate(kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.spatial(self.channel(x))
