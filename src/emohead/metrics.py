"""The field's metrics, computed as evaluation_eat does: M-LMD, F-LMD, SSIM, PSNR."""

from __future__ import annotations

import numpy as np
from skimage.metrics import structural_similarity

from emohead.features.schema import MOUTH

PSNR_CAP_DB = 100.0  # identical frames: ATVGnet's psnr_f returns 100 rather than infinity


def _centred(points: np.ndarray) -> np.ndarray:
    return points - points.mean(axis=-2, keepdims=True)


def landmark_distance(real: np.ndarray, fake: np.ndarray, points: slice = slice(None)) -> float:
    """Mean per-point Euclidean distance (px) after centring each set on its own centroid.

    real, fake: (..., 68, 2). points selects the subset (MOUTH for M-LMD, all for F-LMD); the centroid is
    that subset's own, as evaluation_eat's calibrate_lmk does. Averaged over points then frames.
    """
    real = _centred(np.asarray(real, np.float64)[..., points, :])
    fake = _centred(np.asarray(fake, np.float64)[..., points, :])
    return float(np.linalg.norm(real - fake, axis=-1).mean())


def mouth_lmd(real: np.ndarray, fake: np.ndarray) -> float:
    """M-LMD: landmark distance over the 20 mouth points 48-67."""
    return landmark_distance(real, fake, MOUTH)


def face_lmd(real: np.ndarray, fake: np.ndarray) -> float:
    """F-LMD: landmark distance over all 68 points."""
    return landmark_distance(real, fake)


def psnr(real: np.ndarray, fake: np.ndarray) -> float:
    """PSNR (dB) of uint8 frames, data range 255, in float (no uint8 wrap-around); capped at PSNR_CAP_DB."""
    mse = np.mean((np.asarray(real, np.float64) - np.asarray(fake, np.float64)) ** 2)
    if mse == 0:
        return PSNR_CAP_DB
    return float(min(PSNR_CAP_DB, 10 * np.log10(255.0**2 / mse)))


def ssim(real: np.ndarray, fake: np.ndarray) -> float:
    """SSIM of RGB uint8 frames (skimage defaults: 7x7 uniform window, data range 255)."""
    return float(
        structural_similarity(
            np.asarray(real, np.float64), np.asarray(fake, np.float64), channel_axis=-1, data_range=255.0
        )
    )
