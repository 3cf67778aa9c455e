"""Face crops: one square box per clip (steady, so the crop shows head motion), resized to crop_size."""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from emohead.errors import InputError
from emohead.features.landmarks import LandmarkDetector

CropBox = tuple[int, int, int]  # left, top, size in the source frame's pixels


def clip_crop_box(landmarks: np.ndarray, margin: float) -> CropBox:
    """Square around the landmarks grown by `margin` per side: median over the clip, whole pixels."""
    points = np.asarray(landmarks, dtype=np.float64).reshape(-1, 68, 2)
    low, high = points.min(axis=1), points.max(axis=1)  # (n, 2) per-frame bounding boxes
    centre = np.median((low + high) / 2, axis=0)
    side = np.median((high - low).max(axis=1)) * (1 + 2 * margin)
    size = max(int(round(side)), 2)
    left, top = (int(round(c - size / 2)) for c in centre)
    return left, top, size


def crop_frames(frames: np.ndarray, box: CropBox, crop_size: int) -> np.ndarray:
    """uint8 RGB (n, S, S, 3) crops of `box`; parts of the box outside the frame are black."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    return np.stack([_crop_one(frame, box, crop_size) for frame in frames]).astype(np.uint8)


def _crop_one(frame: np.ndarray, box: CropBox, crop_size: int) -> np.ndarray:
    left, top, size = box
    height, width = frame.shape[:2]
    patch = np.zeros((size, size, 3), dtype=np.uint8)
    src_top, src_left = max(top, 0), max(left, 0)
    src_bottom, src_right = min(top + size, height), min(left + size, width)
    if src_bottom > src_top and src_right > src_left:
        patch[src_top - top : src_bottom - top, src_left - left : src_right - left] = frame[
            src_top:src_bottom, src_left:src_right
        ]
    # INTER_AREA averages when shrinking (no aliasing); cv2.resize maps pixel centres, as to_crop_coords.
    interpolation = cv2.INTER_AREA if size > crop_size else cv2.INTER_LINEAR
    return cv2.resize(patch, (crop_size, crop_size), interpolation=interpolation)


def to_crop_coords(landmarks: np.ndarray, box: CropBox, crop_size: int) -> np.ndarray:
    """Frame-pixel landmarks (..., 68, 2) -> the crop's pixels (pixel centres map as cv2.resize maps them)."""
    left, top, size = box
    scale = crop_size / size
    offset = np.array([left, top], dtype=np.float64)
    return ((np.asarray(landmarks, dtype=np.float64) - offset + 0.5) * scale - 0.5).astype(np.float32)


@cache
def _still_detector() -> LandmarkDetector:
    # Stills can be any size: detect at up to 640 px so small faces in large photos are still found.
    return LandmarkDetector(detect_max_side=640)


def crop_face_image(
    image_rgb: np.ndarray, crop_size: int, margin: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """A still image -> (face crop uint8 (S, S, 3), its 68 landmarks in crop pixels, faces found)."""
    image = np.asarray(image_rgb)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"expected an RGB image (h, w, 3), got shape {image.shape}")
    detector = _still_detector()
    boxes = detector.detect(image)
    if not boxes:
        # A face filling the whole picture is missed by HOG: give it a border and try once more.
        pad = max(image.shape[:2]) // 4
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        boxes = [tuple(v - pad for v in box) for box in detector.detect(padded)]
    if not boxes:
        raise InputError("no face found in the image")
    landmarks = detector.fit(image, boxes[0])
    box = clip_crop_box(landmarks[None], margin)
    crop = crop_frames(image[None], box, crop_size)[0]
    return crop, to_crop_coords(landmarks, box, crop_size), len(boxes)
