"""Face identities from a real photograph: skimage's astronaut (public domain) and a recoloured,
mirrored, reshaped variant. Landmarks come from dlib's 68-point predictor, found once per process."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from emohead.errors import InputError
from emohead.face_models import dlib_models

# dlib's 68-point scheme (0-based): the groups the animation moves.
JAW = np.arange(0, 17)
BROWS = np.arange(17, 27)
NOSE = np.arange(27, 36)
EYES = np.arange(36, 48)
RIGHT_EYE = np.arange(36, 42)  # image-left eye
LEFT_EYE = np.arange(42, 48)
OUTER_LIPS = np.arange(48, 60)
INNER_LIPS = np.arange(60, 68)
INNER_TOP = np.array([61, 62, 63])
INNER_BOTTOM = np.array([67, 66, 65])  # paired with INNER_TOP


@dataclass(frozen=True)
class Identity:
    """A photo plus where its 68 landmarks are and where they sit at rest (mouth closed, own geometry)."""

    name: str
    photo: np.ndarray  # uint8 RGB
    photo_landmarks: np.ndarray  # (68, 2) float32, pixels of `photo`
    rest_landmarks: np.ndarray  # (68, 2) float32, same pixels: the neutral pose to animate from
    f0_hz: float  # speaking pitch of this voice
    formant_scale: float  # vocal-tract length: formants scale by this




def detect_landmarks(image: np.ndarray, upsample: int = 1) -> np.ndarray:
    """68 landmarks of the largest face dlib's HOG detector finds in an RGB image."""
    detector, predictor = dlib_models()
    faces = detector(image, upsample)
    if not faces:
        raise InputError("identity photo: dlib found no face")
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = predictor(image, face)
    return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float32)


def close_mouth(landmarks: np.ndarray) -> np.ndarray:
    """The photo smiles with parted lips: rest pose meets the inner lips at their middle line."""
    rest = landmarks.copy()
    middle = (rest[INNER_TOP, 1] + rest[INNER_BOTTOM, 1]) / 2
    rest[INNER_TOP, 1] = middle
    rest[INNER_BOTTOM, 1] = middle
    return rest


def skin_mask(image_shape: tuple[int, ...], landmarks: np.ndarray) -> np.ndarray:
    """Soft float mask of skin: the jaw hull extended up over the forehead and down over the neck."""
    jaw = landmarks[JAW]
    brow_top = landmarks[BROWS, 1].min()
    chin = landmarks[8, 1]
    face_h = chin - brow_top
    forehead = [[jaw[-1, 0], brow_top - 0.25 * face_h], [jaw[0, 0], brow_top - 0.25 * face_h]]
    neck = [[jaw[4, 0], chin + 0.3 * face_h], [jaw[12, 0], chin + 0.3 * face_h]]
    hull = cv2.convexHull(np.vstack([jaw, forehead, neck]).astype(np.float32)).astype(np.int32)
    mask = np.zeros(image_shape[:2], np.float32)
    cv2.fillConvexPoly(mask, hull, 1.0)
    return cv2.GaussianBlur(mask, (0, 0), 0.04 * face_h)[..., None]


def recolour(photo: np.ndarray, landmarks: np.ndarray, skin_gain: tuple[float, float, float],
             hue_shift_deg: float) -> np.ndarray:
    """A different person's colouring: skin tone scaled per channel; hair, clothes and background
    darker, less saturated and hue-rotated (light brown hair becomes dark)."""
    mask = skin_mask(photo.shape, landmarks)
    skin = photo.astype(np.float32) * np.asarray(skin_gain, np.float32)
    hsv = cv2.cvtColor(photo, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + int(hue_shift_deg / 2)) % 180  # OpenCV hue is 0..179
    hsv[..., 1] = (hsv[..., 1] * 0.6).astype(np.uint8)
    hsv[..., 2] = (hsv[..., 2] * 0.55).astype(np.uint8)
    surround = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB).astype(np.float32)
    return np.clip(mask * skin + (1 - mask) * surround, 0, 255).astype(np.uint8)


def reshape_face(landmarks: np.ndarray, jaw_width: float, eye_distance: float) -> np.ndarray:
    """Another face geometry: a wider/narrower jaw and eyes (with brows) set further apart or closer."""
    shaped = landmarks.copy()
    centre_x = landmarks[[27, 28, 29, 30], 0].mean()
    # Widen the jaw most at the cheeks (points 3-13), not at the ears or the chin.
    weight = np.sin(np.linspace(0, np.pi, 17)) ** 0.5
    shaped[JAW, 0] = centre_x + (landmarks[JAW, 0] - centre_x) * (1 + (jaw_width - 1) * weight)
    interocular = landmarks[LEFT_EYE, 0].mean() - landmarks[RIGHT_EYE, 0].mean()
    shift = (eye_distance - 1) * interocular / 2
    for group in (RIGHT_EYE, np.arange(17, 22)):
        shaped[group, 0] -= shift
    for group in (LEFT_EYE, np.arange(22, 27)):
        shaped[group, 0] += shift
    return shaped


def actor_jitter(actor: str) -> float:
    """A stable number in [-1, 1] per actor id, so two actors of the same sex still differ a little."""
    digest = hashlib.sha256(actor.encode()).digest()
    return int.from_bytes(digest[:4], "little") / 2**31 - 1


@cache
def _astronaut() -> tuple[np.ndarray, np.ndarray]:
    from skimage import data

    photo = np.ascontiguousarray(data.astronaut())
    return photo, detect_landmarks(photo)


@cache
def identity_for(actor: str) -> Identity:
    """W* actors: the astronaut as photographed. M* actors: mirrored, recoloured, reshaped, lower voice."""
    photo, landmarks = _astronaut()
    jitter = actor_jitter(actor)
    if actor.startswith("W"):
        rest = reshape_face(close_mouth(landmarks), 1 + 0.03 * jitter, 1 + 0.02 * jitter)
        return Identity(actor, photo, landmarks, rest, f0_hz=200 * (1 + 0.05 * jitter),
                        formant_scale=1.12 + 0.02 * jitter)
    mirrored = np.ascontiguousarray(photo[:, ::-1])
    mirrored_landmarks = detect_landmarks(mirrored)  # dlib again: its point order stays anatomical
    coloured = recolour(mirrored, mirrored_landmarks, skin_gain=(0.82, 0.7, 0.62),
                        hue_shift_deg=150 + 20 * jitter)
    rest = reshape_face(close_mouth(mirrored_landmarks), 1.12 + 0.03 * jitter, 1.08 + 0.02 * jitter)
    return Identity(actor, coloured, mirrored_landmarks, rest, f0_hz=115 * (1 + 0.05 * jitter),
                    formant_scale=1.0 + 0.02 * jitter)
