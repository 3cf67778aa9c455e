"""68 landmarks -> a sketch image, as MakeItTalk's vis_landmark_on_img draws them (the translator's input)."""

from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np

from emohead.errors import InputError
from emohead.features.schema import N_POINTS

WHITE = (255, 255, 255)
_SUBPIXEL_BITS = 4  # cv2 fixed-point coordinates: landmarks keep 1/16 px precision


class FacePart(NamedTuple):
    start: int
    stop: int  # exclusive
    closed: bool
    colour: tuple[int, int, int]  # RGB (MakeItTalk lists them in BGR)


# MakeItTalk's data_preparation.py::vis_landmark_on_img, colours converted from its BGR to RGB.
JAW_RGB = (25, 144, 255)
BROW_RGB = (50, 205, 50)
NOSE_RGB = (63, 224, 208)
EYE_RGB = (255, 99, 71)
LIP_RGB = (238, 130, 238)

FACE_PARTS: tuple[FacePart, ...] = (
    FacePart(0, 17, False, JAW_RGB),
    FacePart(17, 22, False, BROW_RGB),
    FacePart(22, 27, False, BROW_RGB),
    FacePart(27, 36, False, NOSE_RGB),  # bridge 27-30 and nostrils 31-35 as one polyline, as MakeItTalk
    FacePart(36, 42, True, EYE_RGB),
    FacePart(42, 48, True, EYE_RGB),
    FacePart(48, 60, True, LIP_RGB),
    FacePart(60, 68, True, LIP_RGB),
)


def line_width(size: int) -> int:
    """MakeItTalk draws 2 px lines at 256 px: scale with the image, at least 1 px."""
    return max(1, round(2 * size / 256))


def draw_landmarks(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(68, 2) points in pixels (x, y) -> (size, size, 3) uint8 RGB: coloured polylines per part on white."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (N_POINTS, 2):
        raise InputError(f"landmarks: expected shape ({N_POINTS}, 2), got {points.shape}")
    if not np.isfinite(points).all():
        raise InputError("landmarks: contain NaN or infinite coordinates")
    canvas = np.full((size, size, 3), 255, dtype=np.uint8)
    fixed = np.round(points * (1 << _SUBPIXEL_BITS)).astype(np.int32)
    width = line_width(size)
    for part in FACE_PARTS:
        polyline = fixed[part.start : part.stop].reshape(-1, 1, 2)
        cv2.polylines(canvas, [polyline], part.closed, part.colour, width, cv2.LINE_8, _SUBPIXEL_BITS)
    return canvas
