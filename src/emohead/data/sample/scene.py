"""An identity framed in a width x height video frame, and rendering one frame from target landmarks."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from emohead.data.sample.face import head_transform, normalise
from emohead.data.sample.identities import INNER_BOTTOM, INNER_LIPS, INNER_TOP, identity_for
from emohead.data.sample.warp import triangulate, warp_piecewise_affine

FRAME_HEIGHT_UNITS = 4.4  # frame height in interocular distances: the face box is ~half the frame height
FRAME_CENTRE_UP = 0.1  # frame centre above the landmarks' mean, interocular distances (shows the hair)
RING_RADII = (1.55, 1.85)  # control points around the face that follow the head, interocular distances
RING_POINTS = 16
MOUTH_COLOUR = (48, 16, 22)  # dark red-brown interior, drawn where the lips part
MIN_GAP_PX = 0.6


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (h, w, 3) uint8 RGB: the identity's photo, cropped and scaled to the frame
    source_points: np.ndarray  # (68 + ring + border, 2): where the texture is in `image`
    triangles: np.ndarray
    origin_px: np.ndarray  # the normalised coordinates' origin in frame pixels
    unit_px: float  # one interocular distance in frame pixels
    ring: np.ndarray  # (RING_POINTS, 2) normalised
    border: np.ndarray  # fixed frame-edge points

    def to_pixels(self, normalised_points: np.ndarray) -> np.ndarray:
        return normalised_points * self.unit_px + self.origin_px


def _border_points(width: int, height: int, per_side: int = 4) -> np.ndarray:
    xs = np.linspace(0, width - 1, per_side + 1)
    ys = np.linspace(0, height - 1, per_side + 1)
    top = np.stack([xs, np.zeros_like(xs)], 1)
    bottom = np.stack([xs, np.full_like(xs, height - 1)], 1)
    left = np.stack([np.zeros_like(ys[1:-1]), ys[1:-1]], 1)
    right = np.stack([np.full_like(ys[1:-1], width - 1), ys[1:-1]], 1)
    return np.concatenate([top, bottom, left, right])


@cache
def scene_for(actor: str, width: int, height: int) -> Scene:
    """Crop the identity's photo around the face at the frame's aspect ratio and scale it to the frame."""
    identity = identity_for(actor)
    _, origin, unit = normalise(identity.rest_landmarks)
    scale = height / (FRAME_HEIGHT_UNITS * unit)  # photo pixels -> frame pixels
    photo_h, photo_w = identity.photo.shape[:2]
    half_w, half_h = width / scale / 2, height / scale / 2
    centre = origin - np.array([0.0, FRAME_CENTRE_UP * unit])
    centre = np.clip(centre, [half_w, half_h], [photo_w - half_w, photo_h - half_h])  # stay inside the photo
    to_frame = np.array([[scale, 0, width / 2 - scale * centre[0]], [0, scale, height / 2 - scale * centre[1]]])
    image = cv2.warpAffine(identity.photo, to_frame, (width, height), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REFLECT)
    origin_px = origin * scale + to_frame[:, 2]
    angles = np.linspace(0, 2 * np.pi, RING_POINTS, endpoint=False)
    ring = np.stack([RING_RADII[0] * np.cos(angles), RING_RADII[1] * np.sin(angles)], 1)
    border = _border_points(width, height)
    face_px = identity.photo_landmarks * scale + to_frame[:, 2]
    source = np.concatenate([face_px, ring * unit * scale + origin_px, border]).astype(np.float64)
    return Scene(image, source, triangulate(source), origin_px, unit * scale, ring, border)


def draw_mouth_interior(frame: np.ndarray, landmarks_px: np.ndarray) -> None:
    """Darken the inside of the inner-lip polygon where the lips part (the photo has teeth there)."""
    gap = float(np.mean(landmarks_px[INNER_BOTTOM, 1] - landmarks_px[INNER_TOP, 1]))
    if gap < MIN_GAP_PX:
        return
    polygon = np.round(landmarks_px[INNER_LIPS] * 16).astype(np.int32)
    cv2.fillPoly(frame, [polygon], MOUTH_COLOUR, lineType=cv2.LINE_AA, shift=4)


def render_frame(scene: Scene, landmarks: np.ndarray, head: np.ndarray) -> np.ndarray:
    """One RGB frame: the photo warped so its landmarks land on `landmarks` (normalised), ring following
    the head (`head`: angle_rad, scale, tx, ty), frame edges fixed."""
    landmarks_px = scene.to_pixels(landmarks)
    ring_px = scene.to_pixels(head_transform(scene.ring, *head))
    target = np.concatenate([landmarks_px, ring_px, scene.border])
    frame = warp_piecewise_affine(scene.image, scene.source_points, target, scene.triangles)
    draw_mouth_interior(frame, landmarks_px)
    return frame
