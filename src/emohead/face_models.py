"""dlib's face detector and 68-point predictor, shared by the sample generator and the features stage."""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

import dlib

from emohead.errors import InputError


@cache
def predictor_path() -> Path:
    """The 68-point model in face_recognition_models (found, not imported: it breaks on setuptools >= 81)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("face_recognition_models is not installed: it provides the 68-point dlib model")
    path = Path(spec.submodule_search_locations[0]) / "models" / "shape_predictor_68_face_landmarks.dat"
    if not path.is_file():
        raise InputError(f"{path}: dlib's 68-point shape predictor is missing")
    return path


@cache
def dlib_models() -> tuple[dlib.fhog_object_detector, dlib.shape_predictor]:
    """(HOG frontal face detector, 68-point shape predictor), loaded once per process."""
    return dlib.get_frontal_face_detector(), dlib.shape_predictor(str(predictor_path()))
