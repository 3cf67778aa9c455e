"""AATU (Figure 3): MakeItTalk's residual U-Net translator with CBAM in the four shallowest levels.

Input: the target's landmark sketch and the reference face, concatenated by channel (6 x S x S, [0, 1]).
Output: the target frame (3 x S x S, [0, 1]). With attention=False it is the plain MakeItTalk translator
(the paper's "w/o AATU" / Baseline rows).
output="residual" (our addition, not the paper's or MakeItTalk's) adds the network's output to the reference
in logit space and starts from "copy the reference": on a CPU budget of a few hundred steps a translator
trained from scratch does not get back to the reference's sharpness.

Level i (0 = shallowest) has base * 2**min(i, 3) channels (doubling capped at 8x base, as MakeItTalk).
  encoder level i: 3x3 conv stride 2 (+BN, except level 0 as MakeItTalk) + ReLU + residual blocks [+ CBAM]
  decoder level i: [CBAM on concat(skip, deeper output)] + nearest upsample + 3x3 conv + BN + ReLU
                   + residual blocks; level 0 ends with a 3x3 conv to RGB and a sigmoid instead.
CBAM placement: the paper puts it "in the initial four layers of the encoder and decoder" and motivates
it with the shallow, high-resolution layers; we read that as levels 0-3 on both sides (all levels when
depth < 4). On the decoder side it refines the level's input (skip + upsampled features), so it never acts
on the 3-channel output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from emohead.models.cbam import CBAM

IN_CHANNELS = 6  # landmark sketch (3) + reference face (3)
OUT_CHANNELS = 3
ATTENTION_LEVELS = 4  # "the initial four layers of the encoder and decoder"
OUTPUT_MODES = ("direct", "residual")
_LOGIT_EPS = 1.0 / 512  # keeps logit(reference) finite; half a uint8 step, so rounding gives the pixel back


@dataclass(frozen=True)
class TranslatorSpec:
    """What is needed to rebuild the network from a checkpoint."""

    base_channels: int = 32
    depth: int = 5
    res_blocks: int = 1
    attention: bool = True
    output: str = "direct"  # direct: sigmoid(x), as MakeItTalk | residual: sigmoid(logit(reference) + x)

    def channels(self, level: int) -> int:
        return self.base_channels * 2 ** min(level, 3)


class ResidualBlock(nn.Module):
    """MakeItTalk's block: relu(x + BN(conv(relu(BN(conv(x))))))."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.block(x))


def _residual_stack(channels: int, count: int) -> list[nn.Module]:
    return [ResidualBlock(channels) for _ in range(count)]


class DownLevel(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, res_blocks: int, norm: bool, attention: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 3, 2, 1, bias=not norm)]
        if norm:
            layers.append(nn.BatchNorm2d(out_channels))
        layers += [nn.ReLU(inplace=True), *_residual_stack(out_channels, res_blocks)]
        if attention:
            layers.append(CBAM(out_channels))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class UpLevel(nn.Module):
    def __init__(
        self, in_channels: int, out_channels: int, res_blocks: int, outermost: bool, attention: bool
    ):
        super().__init__()
        self.attention = CBAM(in_channels) if attention else nn.Identity()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=outermost)
        tail: list[nn.Module] = []
        if not outermost:
            tail = [
                nn.BatchNorm2d(out_channels),
                nn.ReLU(inplace=True),
                *_residual_stack(out_channels, res_blocks),
            ]
        self.tail = nn.Sequential(*tail)

    def forward(self, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        # Upsample to the skip's exact size (not x2), so sides that are not a multiple of 2**depth work too.
        x = F.interpolate(self.attention(x), size=size, mode="nearest")
        return self.tail(self.conv(x))


class AATU(nn.Module):
    """Attention-Augmented Translator based on U-net: (B, 6, S, S) in [0, 1] -> (B, 3, S, S) in [0, 1]."""

    def __init__(self, spec: TranslatorSpec):
        super().__init__()
        if spec.depth < 1 or spec.base_channels < 1 or spec.res_blocks < 0 or spec.output not in OUTPUT_MODES:
            raise ValueError(f"invalid translator spec {spec}")
        self.spec = spec
        attend = [spec.attention and level < ATTENTION_LEVELS for level in range(spec.depth)]
        self.down = nn.ModuleList(
            DownLevel(
                IN_CHANNELS if level == 0 else spec.channels(level - 1),
                spec.channels(level),
                spec.res_blocks,
                norm=level > 0,
                attention=attend[level],
            )
            for level in range(spec.depth)
        )
        innermost = spec.depth - 1
        self.up = nn.ModuleList(
            UpLevel(
                # the innermost level has no skip to concatenate
                spec.channels(level) * (1 if level == innermost else 2),
                OUT_CHANNELS if level == 0 else spec.channels(level - 1),
                spec.res_blocks,
                outermost=level == 0,
                attention=attend[level],
            )
            for level in range(spec.depth)
        )
        if spec.output == "residual":  # start as "copy the reference"; training learns the change
            nn.init.zeros_(self.up[0].conv.weight)
            nn.init.zeros_(self.up[0].conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        reference = x[:, 3:6]
        sizes = [tuple(x.shape[-2:])]
        skips = []
        for level in self.down:
            x = level(x)
            skips.append(x)
            sizes.append(tuple(x.shape[-2:]))
        for level in reversed(range(self.spec.depth)):
            if level < self.spec.depth - 1:
                x = torch.cat([skips[level], x], dim=1)  # U-Net skip connection
            x = self.up[level](x, sizes[level])
        if self.spec.output == "residual":
            x = x + torch.logit(reference, eps=_LOGIT_EPS)
        return torch.sigmoid(x)
