"""Audio + reference face -> talking-head frames: MFCC, stage 1 (landmarks), stage 2 (frames).

The one path both `evaluate` and `emohead generate` run, so the numbers in metrics/eval.json describe
exactly what a user gets from the command line.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from emohead import paths
from emohead.errors import InputError
from emohead.features.schema import MFCC_PER_VIDEO_FRAME

# The models consume MFCC_PER_VIDEO_FRAME 10 ms MFCC frames per video frame: 25 fps only.
FPS = 1000 // (10 * MFCC_PER_VIDEO_FRAME)
SAMPLE_RATE_HZ = 16000  # the paper's audio rate; MFCC hop 160 samples = 10 ms

# Which `dvc repro` target makes each model file (names as in dvc.yaml).
MODEL_TARGETS: dict[str, str] = {
    paths.STAGE1_MODEL.name: "train_stage1",
    paths.STAGE2_MODEL.name: "train_stage2",
}


def model_files(models_dir: Path) -> tuple[Path, Path]:
    """(stage1.pt, stage2.pt) inside models_dir; missing ones raise InputError naming the dvc target."""
    models_dir = Path(models_dir)
    files = (models_dir / paths.STAGE1_MODEL.name, models_dir / paths.STAGE2_MODEL.name)
    missing = [f for f in files if not f.is_file()]
    if missing:
        targets = " ".join(MODEL_TARGETS[f.name] for f in missing)
        names = ", ".join(str(f) for f in missing)
        raise InputError(f"{names}: model file not found; train it with `dvc repro {targets}`")
    return files


@dataclass
class Models:
    """The two trained stages, loaded once and reused for every clip."""

    stage1: object  # emohead.train.stage1.Stage1Predictor
    stage2: object  # emohead.rendering.Stage2Renderer

    @property
    def crop_size(self) -> int:
        """Side of the frames stage 2 renders (px)."""
        return int(self.stage2.crop_size)

    @property
    def n_mfcc(self) -> int:
        return int(self.stage1.n_mfcc)


def load_models(models_dir: Path = paths.MODELS, device: str = "cpu") -> Models:
    """Load stage1.pt and stage2.pt from models_dir (InputError naming the `dvc repro` target when absent)."""
    stage1_path, stage2_path = model_files(models_dir)
    # Imported here: torch and the model code cost seconds, and `emohead --help` must stay instant.
    from emohead.rendering import Stage2Renderer
    from emohead.train.stage1 import Stage1Predictor

    return Models(Stage1Predictor.load(stage1_path, device=device), Stage2Renderer.load(stage2_path, device=device))


def n_frames_for(n_audio_samples: int, sample_rate_hz: int = SAMPLE_RATE_HZ, fps: int = FPS) -> int:
    """Video frames covering the audio: round(duration * fps)."""
    return int(round(n_audio_samples / sample_rate_hz * fps))


def audio_features(audio: np.ndarray, n_mfcc: int) -> np.ndarray:
    """16 kHz mono float audio -> raw MFCC (n_mfcc_frames, n_mfcc), 4 frames per 25 fps video frame."""
    from emohead.features.mfcc import compute_mfcc

    return compute_mfcc(audio, SAMPLE_RATE_HZ, n_mfcc)


def resize_landmarks(landmarks: np.ndarray, from_size: int, to_size: int) -> np.ndarray:
    """Landmarks in a from_size crop -> the same points in a to_size crop (pixel centres kept aligned)."""
    if from_size == to_size:
        return np.asarray(landmarks, np.float32)
    scale = to_size / from_size
    return ((np.asarray(landmarks, np.float32) + 0.5) * scale - 0.5).astype(np.float32)


def resize_frames(frames: np.ndarray, size: int) -> np.ndarray:
    """(n, S, S, 3) uint8 -> (n, size, size, 3) uint8 (area filter when shrinking, cubic when growing)."""
    if frames.shape[1] == size and frames.shape[2] == size:
        return np.asarray(frames)
    interpolation = cv2.INTER_AREA if frames.shape[1] > size else cv2.INTER_CUBIC
    return np.stack([cv2.resize(np.asarray(f), (size, size), interpolation=interpolation) for f in frames])


def predict_landmarks(
    models: Models, mfcc: np.ndarray, reference_landmarks: np.ndarray, n_frames: int
) -> np.ndarray:
    """Stage 1: MFCC + the reference face's landmarks (crop px) -> (n_frames, 68, 2) in stage 2's crop px."""
    stage1_size = int(getattr(models.stage1, "crop_size", models.crop_size))
    reference = resize_landmarks(reference_landmarks, models.crop_size, stage1_size)
    predicted = models.stage1.predict_landmarks(mfcc, reference, n_frames)
    return resize_landmarks(predicted, stage1_size, models.crop_size)


def render_frames(
    models: Models,
    landmarks: np.ndarray,
    reference: np.ndarray,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Stage 2: landmarks (n, 68, 2) + reference crop (S, S, 3) -> frames (n, S, S, 3) uint8 RGB.

    progress(k) is called after every batch of k frames (a tqdm bar's update).
    """
    if reference.shape[:2] != (models.crop_size, models.crop_size):
        raise InputError(
            f"reference image is {reference.shape[1]}x{reference.shape[0]} px; stage 2 renders "
            f"{models.crop_size}x{models.crop_size}"
        )
    chunks = []
    for start in range(0, len(landmarks), batch_size):
        batch = landmarks[start : start + batch_size]
        chunks.append(models.stage2.render(batch, reference, batch_size=batch_size))
        if progress is not None:
            progress(len(batch))
    if not chunks:
        return np.zeros((0, models.crop_size, models.crop_size, 3), np.uint8)
    return np.concatenate(chunks).astype(np.uint8, copy=False)


def animate(
    models: Models,
    mfcc: np.ndarray,
    reference: np.ndarray,
    reference_landmarks: np.ndarray,
    n_frames: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The whole path: (landmarks (n, 68, 2), frames (n, S, S, 3)) for n_frames of speech."""
    landmarks = predict_landmarks(models, mfcc, reference_landmarks, n_frames)
    frames = render_frames(models, landmarks, reference, progress=progress)
    return landmarks, frames
