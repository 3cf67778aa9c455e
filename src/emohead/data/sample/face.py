"""Face motion in normalised coordinates (origin: the rest face's mean landmark, unit: interocular distance,
y down): emotion offsets, speech mouth shapes, blinks and head motion, applied to the 68 landmarks."""

from __future__ import annotations

import numpy as np

from emohead.data.sample.expressions import FacePattern
from emohead.data.sample.identities import LEFT_EYE, RIGHT_EYE

UPPER_LIDS = np.array([37, 38, 43, 44])
LOWER_LIDS = np.array([41, 40, 47, 46])  # below UPPER_LIDS, pairwise
MIN_EYE_GAP = 0.03  # an expression never shuts the eye: blinks do that


def normalise(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(normalised landmarks, origin in pixels, interocular distance in pixels)."""
    origin = landmarks.mean(axis=0)
    unit = float(np.linalg.norm(landmarks[LEFT_EYE].mean(0) - landmarks[RIGHT_EYE].mean(0)))
    return (landmarks - origin) / unit, origin, unit


def _move(points: np.ndarray, indices, dx=0.0, dy=0.0) -> None:
    points[indices, 0] += dx
    points[indices, 1] += dy


def apply_expression(rest: np.ndarray, face: FacePattern) -> np.ndarray:
    """The emotion's static face: brows, eyes, mouth corners, upper lip (offsets upward = -y)."""
    p = rest.copy()
    inner_weight = np.array([0.0, 0.25, 0.5, 0.8, 1.0])
    _move(p, np.arange(17, 27), dy=-face.brow_raise)
    _move(p, np.arange(17, 22), dx=face.brow_squeeze * inner_weight, dy=-face.brow_inner_raise * inner_weight)
    _move(p, np.arange(22, 27), dx=-face.brow_squeeze * inner_weight[::-1],
          dy=-face.brow_inner_raise * inner_weight[::-1])
    _move(p, UPPER_LIDS, dy=-face.eye_open)
    _move(p, LOWER_LIDS, dy=0.3 * face.eye_open)
    p[UPPER_LIDS, 1] = np.minimum(p[UPPER_LIDS, 1], p[LOWER_LIDS, 1] - MIN_EYE_GAP)
    corner = face.mouth_corner_up
    _move(p, [48, 54, 60, 64], dy=-corner)
    _move(p, [49, 53, 55, 59], dy=-0.5 * corner)
    smirk = face.mouth_corner_asym  # the image-right corner only
    _move(p, [54, 64], dx=0.3 * smirk, dy=-smirk)
    _move(p, [53, 55], dy=-0.5 * smirk)
    width = face.mouth_width
    _move(p, [48, 60], dx=-width)
    _move(p, [54, 64], dx=width)
    _move(p, [49, 59], dx=-0.5 * width)
    _move(p, [53, 55], dx=0.5 * width)
    raise_ = face.upper_lip_raise * np.array([0.6, 1.0, 1.0, 1.0, 0.6])
    p[49:54, 1] -= raise_
    p[61:64, 1] -= 0.3 * raise_[1:4]
    return p


def apply_speech(points: np.ndarray, opening: float, rounding: float, spreading: float) -> np.ndarray:
    """One frame's mouth: jaw/lower lip drop by `opening` (the inner-lip gap), lips rounded or spread."""
    p = points.copy()
    o = opening
    p[[65, 66, 67], 1] += 0.85 * o * np.array([0.9, 1.0, 0.9])
    p[[61, 62, 63], 1] -= 0.15 * o * np.array([0.9, 1.0, 0.9])
    p[55:60, 1] += o * np.array([0.5, 0.8, 0.85, 0.8, 0.5])
    p[49:54, 1] -= 0.12 * o * np.array([0.5, 1.0, 1.0, 1.0, 0.5])
    _move(p, [48, 54, 60, 64], dy=0.3 * o)
    _move(p, [48, 60], dx=0.08 * o)
    _move(p, [54, 64], dx=-0.08 * o)
    p[3:14, 1] += o * np.array([0.1, 0.3, 0.5, 0.7, 0.85, 0.9, 0.85, 0.7, 0.5, 0.3, 0.1])
    r, s = rounding, spreading
    _move(p, [48, 60], dx=0.12 * r - 0.07 * s, dy=-0.02 * s)
    _move(p, [54, 64], dx=-0.12 * r + 0.07 * s, dy=-0.02 * s)
    _move(p, [49, 59], dx=0.05 * r)
    _move(p, [53, 55], dx=-0.05 * r)
    return p


def apply_blink(points: np.ndarray, closure: float) -> np.ndarray:
    """Upper lids travel `closure` (0 open .. 1 shut) of the way to the lower lids."""
    p = points.copy()
    p[UPPER_LIDS, 1] += 0.92 * closure * (p[LOWER_LIDS, 1] - p[UPPER_LIDS, 1])
    return p


def head_transform(points: np.ndarray, angle_rad: float, scale: float, tx: float, ty: float) -> np.ndarray:
    """Rotate/scale about the face's origin, then translate: small rigid head motion in the image plane."""
    c, s = np.cos(angle_rad), np.sin(angle_rad)
    rotation = np.array([[c, -s], [s, c]]) * scale
    return points @ rotation.T + np.array([tx, ty])
