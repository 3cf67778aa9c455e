"""dlib's 68-point landmarks on video: HOG detection on a downscaled frame, then tracking by the predictor.

Running HOG on every full-resolution frame (what ATVGnet/EAT's scripts do) costs ~0.3 s per 1080p frame.
Here the detector sees the frame downscaled to `detect_max_side`, and later frames are fitted inside a box
derived from the previous frame's landmarks (the predictor alone costs < 1 ms); detection runs again only
when the fit degrades or every `redetect_every` frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

import cv2
import dlib
import numpy as np

from emohead.errors import InputError
from emohead.face_models import dlib_models, predictor_path  # noqa: F401 (re-exported)
from emohead.features.schema import N_POINTS

Box = tuple[float, float, float, float]  # left, top, right, bottom in full-frame pixels

# A tracked fit whose landmark box moves or rescales more than this against the previous frame is
# distrusted and replaced by a fresh detection (the predictor happily fits a face into any box).
MAX_CENTRE_JUMP = 0.25  # share of the previous landmark box size
MAX_SIZE_CHANGE = 1.25  # ratio of landmark box sizes, either way
MIN_FACE_CONTRAST = 4.0  # grey-level std under the landmarks; below it the "face" is a flat patch




def to_gray(image_rgb: np.ndarray) -> np.ndarray:
    if image_rgb.ndim == 2:
        return np.ascontiguousarray(image_rgb, dtype=np.uint8)
    return cv2.cvtColor(np.ascontiguousarray(image_rgb, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def landmark_box(points: np.ndarray) -> Box:
    """Bounding box (l, t, r, b) of a (68, 2) landmark set."""
    (left, top), (right, bottom) = points.min(axis=0), points.max(axis=0)
    return float(left), float(top), float(right), float(bottom)


def _area(box: Box) -> float:
    return (box[2] - box[0]) * (box[3] - box[1])


class TrackResult(NamedTuple):
    landmarks: np.ndarray  # float32 (n, 68, 2) in frame pixels; frames without a face interpolated
    detected: np.ndarray  # bool (n,): a face was found (detected or tracked) in this frame
    faces_max: int  # most faces seen by one detection (>1: the largest was taken)


class LandmarkDetector:
    """HOG face detector + 68-point shape predictor, with cheap tracking over a clip."""

    def __init__(self, detect_max_side: int = 320, redetect_every: int = 0):
        self.detect_max_side = detect_max_side
        self.redetect_every = redetect_every
        self._detector, self._predictor = dlib_models()
        self.detections = 0  # frames that ran the HOG detector, over this object's life

    def detect(self, image_rgb: np.ndarray) -> list[Box]:
        """Face boxes (l, t, r, b) in the image's pixels, largest first."""
        gray = to_gray(image_rgb)
        height, width = gray.shape
        scale = self.detect_max_side / max(height, width)
        small = gray
        if abs(scale - 1) > 1e-3:
            interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            small = cv2.resize(
                gray, (round(width * scale), round(height * scale)), interpolation=interpolation
            )
        rects = self._detector(small, 0)
        if len(rects) == 0:  # HOG's 80 px window misses small faces: one pyramid level up
            rects = self._detector(small, 1)
        # dlib's boxes are inclusive pixel ranges in the small image: map their edges back.
        sx, sy = width / small.shape[1], height / small.shape[0]
        boxes = [
            (r.left() * sx, r.top() * sy, (r.right() + 1) * sx - 1, (r.bottom() + 1) * sy - 1) for r in rects
        ]
        return sorted(boxes, key=_area, reverse=True)

    def fit(self, image_rgb: np.ndarray, box: Box | dlib.rectangle) -> np.ndarray:
        """The predictor's 68 points (float32 (68, 2), x then y) inside `box`."""
        if isinstance(box, dlib.rectangle):
            rect = box
        else:
            left, top, right, bottom = (round(v) for v in box)
            rect = dlib.rectangle(left, top, right, bottom)
        image = image_rgb if image_rgb.ndim == 2 else to_gray(image_rgb)
        shape = self._predictor(image, rect)
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def track_clip(self, frames: Iterable[np.ndarray]) -> TrackResult:
        """Landmarks per frame: detect, then fit in a box that follows the previous frame's landmarks."""
        points: list[np.ndarray | None] = []
        faces_max = 0
        previous: np.ndarray | None = None
        box_in_face_units = np.zeros(4)  # the last detector box, relative to its fit's stable points
        since_detection = 0
        for frame in frames:
            gray = to_gray(frame)
            current = None
            due = self.redetect_every > 0 and since_detection >= self.redetect_every
            if previous is not None and not due:
                centre, scale = _anchor(previous)
                current = self.fit(gray, tuple(np.tile(centre, 2) + box_in_face_units * scale))
                lost = _featureless(gray, current)
                if lost or not _consistent(landmark_box(previous), landmark_box(current)):
                    current = None
            if current is None:
                boxes = self.detect(gray)
                self.detections += 1
                since_detection = 0
                faces_max = max(faces_max, len(boxes))
                if boxes:
                    current = self.fit(gray, boxes[0])
                    centre, scale = _anchor(current)
                    box_in_face_units = (np.asarray(boxes[0]) - np.tile(centre, 2)) / scale
            since_detection += 1
            points.append(current)
            previous = current
        if not points:
            raise InputError("no frames to track")
        detected = np.array([p is not None for p in points])
        return TrackResult(interpolate_missing(points), detected, faces_max)


# Brows, nose and eyes: the jaw and lips move with speech, and a box that follows them drifts
# (the predictor's jaw grows with its box, the next box grows with the jaw...).
STABLE_POINTS = slice(17, 48)


def _anchor(points: np.ndarray) -> tuple[np.ndarray, float]:
    """Centroid and RMS radius of the stable points: where the tracking box is pinned."""
    stable = points[STABLE_POINTS].astype(np.float64)
    centre = stable.mean(axis=0)
    return centre, max(float(np.sqrt(((stable - centre) ** 2).sum(axis=1).mean())), 1.0)


def _consistent(before: Box, after: Box) -> bool:
    """A tracked fit is trusted when its landmark box neither jumps nor rescales against the last frame."""
    size_before = max(before[2] - before[0], before[3] - before[1], 1.0)
    size_after = max(after[2] - after[0], after[3] - after[1], 1.0)
    ratio = size_after / size_before
    centre_jump = np.hypot(
        (after[0] + after[2] - before[0] - before[2]) / 2, (after[1] + after[3] - before[1] - before[3]) / 2
    )
    return 1 / MAX_SIZE_CHANGE <= ratio <= MAX_SIZE_CHANGE and centre_jump <= MAX_CENTRE_JUMP * size_before


def _featureless(gray: np.ndarray, points: np.ndarray) -> bool:
    """The predictor fits a face into any box: a flat patch under the landmarks means the face has gone."""
    left, top, right, bottom = (int(round(v)) for v in landmark_box(points))
    patch = gray[max(top, 0) : max(bottom, 0) + 1, max(left, 0) : max(right, 0) + 1]
    return patch.size < 16 or float(patch.std()) < MIN_FACE_CONTRAST


def interpolate_missing(points: list[np.ndarray | None]) -> np.ndarray:
    """Fill frames without landmarks linearly from the nearest found frames (held constant at the ends)."""
    found = [i for i, p in enumerate(points) if p is not None]
    out = np.zeros((len(points), N_POINTS, 2), dtype=np.float32)
    if not found:
        return out
    known = np.stack([points[i] for i in found]).reshape(len(found), -1)
    frames = np.arange(len(points))
    flat = np.stack([np.interp(frames, found, known[:, j]) for j in range(known.shape[1])], axis=1)
    return flat.reshape(len(points), N_POINTS, 2).astype(np.float32)


def track_clip(
    frames: Iterable[np.ndarray], detect_max_side: int = 320, redetect_every: int = 0
) -> TrackResult:
    """Module-level shortcut for LandmarkDetector(...).track_clip(frames)."""
    return LandmarkDetector(detect_max_side, redetect_every).track_clip(frames)
