"""Stage 1's joint loss (paper eq. 2-4).

The landmark terms measure landmarks in percent of the crop side: in normalised coordinates (px / crop_size)
an MSE is ~1e-5 and its gradients sink to the size of Adam's eps, which stalls training.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from emohead.features.schema import MOUTH, N_POINTS

PERCENT = 100.0  # normalised crop coordinates -> percent of the crop side


@dataclass(frozen=True)
class LossWeights:
    """params.yaml `loss:` section; eq. (4)'s scaling factors."""

    alpha: float = 1.0  # L_landmark
    beta: float = 1.0  # L_lip
    gamma: float = 10.0  # L_ec


def emotion_classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_ec: per-class sigmoid BCE against the one-hot label, averaged over classes and frames."""
    one_hot = F.one_hot(labels, logits.shape[-1]).to(logits.dtype)
    return F.binary_cross_entropy_with_logits(logits, one_hot)  # eq. (2)


def landmark_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_landmark: MSE over all 68 points of (..., 68, 2)."""
    return F.mse_loss(fake, real)  # eq. (3)


def lip_loss(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """L_lip: eq. (3) over the lip points 48-67 only."""
    return F.mse_loss(fake[..., MOUTH, :], real[..., MOUTH, :])


def pca_loss(fake: torch.Tensor, real: torch.Tensor, components: torch.Tensor) -> torch.Tensor:
    """L_pca: eq. (3) on the PCA projections; components (k, 136) over x0, y0, x1, y1, ...

    The PCA mean cancels in the difference, so only the components are needed.
    """
    flat = (fake - real).reshape(*fake.shape[:-2], N_POINTS * 2)
    return flat.matmul(components.t()).pow(2).mean()


def joint_loss(
    fake: torch.Tensor,
    real: torch.Tensor,
    components: torch.Tensor,
    weights: LossWeights,
    logits: torch.Tensor | None = None,
    labels: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """L_joint and its terms; fake/real in normalised crop coordinates; without logits (no MSEF) no L_ec."""
    fake, real = fake * PERCENT, real * PERCENT
    terms = {
        "pca": pca_loss(fake, real, components),
        "landmark": landmark_loss(fake, real),
        "lip": lip_loss(fake, real),
    }
    total = terms["pca"] + weights.alpha * terms["landmark"] + weights.beta * terms["lip"]  # eq. (4)
    if logits is not None and labels is not None:
        terms["ec"] = emotion_classification_loss(logits, labels)
        total = total + weights.gamma * terms["ec"]  # eq. (4), + gamma L_ec
    terms["joint"] = total
    return total, terms
