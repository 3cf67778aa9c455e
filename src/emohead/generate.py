"""`emohead generate`: a speech recording + a face photo -> a talking-head video (H.264 + AAC, 25 fps).

Only 25 fps is supported: the models read 4 MFCC frames (10 ms hop) per video frame, so another rate is
rejected rather than silently resampled (re-time the result with ffmpeg if another rate is needed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from emohead import inference, paths
from emohead.atomic import atomic_path
from emohead.errors import InputError

log = logging.getLogger(__name__)

MIN_IMAGE_SIDE = 64  # px; below this no face is big enough for dlib's 68-point model
MAX_IMAGE_SIDE = 2048  # px; larger photos are downscaled before detection (detection cost, memory)
DEFAULT_CROP_MARGIN = 0.25  # features.crop_margin the models were trained with


@dataclass(frozen=True)
class GenerateResult:
    path: Path
    n_frames: int
    duration_s: float
    render_seconds: float  # stage 1 + stage 2 wall time

    @property
    def frames_per_second(self) -> float:
        return self.n_frames / self.render_seconds if self.render_seconds > 0 else float("inf")


def read_image(path: Path) -> np.ndarray:
    """Any image OpenCV decodes -> uint8 RGB; a non-image, a tiny image or a missing file -> InputError."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: image file not found")
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None  # drops alpha, greys -> 3 channels
    if image is None:
        raise InputError(f"{path}: not a readable image (PNG, JPEG, ... expected)")
    height, width = image.shape[:2]
    if min(height, width) < MIN_IMAGE_SIDE:
        raise InputError(
            f"{path}: image is {width}x{height} px, too small to find a face (at least {MIN_IMAGE_SIDE} px a side)"
        )
    if max(height, width) > MAX_IMAGE_SIDE:
        scale = MAX_IMAGE_SIDE / max(height, width)
        log.info("%s: downscaling %dx%d to fit %d px before face detection", path, width, height, MAX_IMAGE_SIDE)
        image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def face_reference(image_path: Path, crop_size: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """The photo's face crop (S, S, 3) and its 68 landmarks in crop px; the largest face when several."""
    from emohead.features.crops import crop_face_image

    image = read_image(image_path)
    try:
        crop, landmarks, n_faces = crop_face_image(image, crop_size, margin)
    except InputError as exc:
        raise InputError(f"{image_path}: {exc}") from None
    if n_faces > 1:
        log.warning("%s: %d faces found; animating the largest", image_path, n_faces)
    return crop, landmarks


def read_speech(audio_path: Path) -> np.ndarray:
    """Any audio ffmpeg reads -> 16 kHz mono float32; empty or too short -> InputError, silence -> warning."""
    from emohead.features.mfcc import is_silent
    from emohead.media import load_audio

    audio = load_audio(audio_path, inference.SAMPLE_RATE_HZ)
    if inference.n_frames_for(audio.size) < 1:
        raise InputError(f"{audio_path}: audio is {audio.size / inference.SAMPLE_RATE_HZ * 1000:.0f} ms long; "
                         f"need at least one video frame ({1000 / inference.FPS:.0f} ms)")
    if is_silent(audio):
        log.warning("%s: the audio is silent; the face will barely move", audio_path)
    return audio


def generate(
    audio_path: Path,
    image_path: Path,
    out_path: Path,
    models_dir: Path = paths.MODELS,
    fps: int = inference.FPS,
    crop_margin: float = DEFAULT_CROP_MARGIN,
) -> GenerateResult:
    """Animate the face in image_path with the speech in audio_path; write out_path (mp4) atomically."""
    from emohead.media import write_video

    if fps != inference.FPS:
        raise InputError(
            f"--fps {fps}: the models are trained at {inference.FPS} fps (4 MFCC frames of 10 ms per video "
            f"frame); only --fps {inference.FPS} is supported (re-time the video with ffmpeg afterwards)"
        )
    audio_path, image_path, out_path = Path(audio_path), Path(image_path), Path(out_path)
    inference.model_files(models_dir)  # fail on missing models before any slow work
    audio = read_speech(audio_path)
    models = inference.load_models(models_dir)
    reference, reference_landmarks = face_reference(image_path, models.crop_size, crop_margin)
    n_frames = inference.n_frames_for(audio.size)

    started = time.perf_counter()
    mfcc = inference.audio_features(audio, models.n_mfcc)
    with tqdm(total=n_frames, desc="generate", unit="frame") as bar:
        _, frames = inference.animate(models, mfcc, reference, reference_landmarks, n_frames, progress=bar.update)
    render_seconds = time.perf_counter() - started

    with atomic_path(out_path) as tmp:
        write_video(tmp, frames, fps, audio=audio_path)
    return GenerateResult(out_path, n_frames, audio.size / inference.SAMPLE_RATE_HZ, render_seconds)
