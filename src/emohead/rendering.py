"""68 landmarks -> a sketch image, as MakeItTalk's vis_landmark_on_img draws them (the translator's input)."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import torch

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


class Stage2Renderer:
    """The trained translator as a function: landmarks + reference face -> frames (what evaluate calls)."""

    FORMAT = "emohead.stage2/1"

    def __init__(self, model: torch.nn.Module, crop_size: int, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.crop_size = crop_size
        self.device = torch.device(device)

    @classmethod
    def load(cls, path: Path, device: str = "cpu") -> Stage2Renderer:
        from emohead.models.unet import AATU, TranslatorSpec

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: stage-2 model not found; run `dvc repro train_stage2`")
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            if payload.get("format") != cls.FORMAT:
                raise ValueError(f"format {payload.get('format')!r}, expected {cls.FORMAT!r}")
            model = AATU(TranslatorSpec(**payload["spec"]))
            model.load_state_dict(payload["state_dict"])
        except Exception as exc:  # truncated file, other format, incompatible weights
            raise InputError(
                f"{path}: not a usable stage-2 model ({type(exc).__name__}: {exc}); "
                "run `dvc repro train_stage2`"
            ) from None
        return cls(model, int(payload["crop_size"]), device)

    def render(self, landmarks: np.ndarray, reference: np.ndarray, batch_size: int = 16) -> np.ndarray:
        """landmarks (n, 68, 2) in crop pixels, reference (S, S, 3) uint8 RGB -> (n, S, S, 3) uint8 RGB."""
        size = self.crop_size
        landmarks = np.asarray(landmarks)
        if landmarks.ndim != 3 or landmarks.shape[1:] != (N_POINTS, 2):
            raise InputError(f"landmarks: expected shape (n, {N_POINTS}, 2), got {landmarks.shape}")
        reference = np.asarray(reference)
        if reference.shape != (size, size, 3) or reference.dtype != np.uint8:
            raise InputError(
                f"reference: expected uint8 ({size}, {size}, 3), got {reference.dtype} {reference.shape}"
            )
        ref = torch.from_numpy(np.array(reference, copy=True)).permute(2, 0, 1).float().div(255.0)
        frames = np.empty((len(landmarks), size, size, 3), np.uint8)
        with torch.inference_mode():
            for start in range(0, len(landmarks), batch_size):
                chunk = landmarks[start : start + batch_size]
                sketches = np.stack([draw_landmarks(points, size) for points in chunk])
                sketch = torch.from_numpy(sketches).permute(0, 3, 1, 2).float().div(255.0)
                inputs = torch.cat([sketch, ref.expand(len(chunk), -1, -1, -1)], dim=1).to(self.device)
                out = self.model(inputs).clamp(0, 1).mul(255).round().byte()
                frames[start : start + len(chunk)] = out.permute(0, 2, 3, 1).cpu().numpy()
        return frames
