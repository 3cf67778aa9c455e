"""MFCC aligned to 25 fps video: 25 ms windows every 10 ms, exactly 4 MFCC frames per video frame.

Alignment: the audio is padded with zeros / trimmed to the video's length (n_video_frames / fps seconds),
and librosa's centred framing (center=True) puts MFCC frame k at time k * 10 ms, so MFCC frame 4i starts
video frame i. A clip of N video frames gives 4N + 1 MFCC frames (the last one centred on the clip's end).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from emohead.errors import InputError
from emohead.features.schema import MFCC_PER_VIDEO_FRAME

WINDOW_S = 0.025  # n_fft = 400 samples at 16 kHz
HOP_S = 0.010  # hop_length = 160 samples at 16 kHz
SILENCE_PEAK = 1e-4  # peak |amplitude| below this (about -80 dBFS) counts as silent audio


def compute_mfcc(audio: np.ndarray, sample_rate_hz: int, n_mfcc: int) -> np.ndarray:
    """Mono float audio -> float32 MFCC (n_frames, n_mfcc), 100 frames per second."""
    import librosa  # numba's first compile is slow: only callers that need MFCC pay for it

    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if audio.size == 0:
        raise InputError("no audio samples to compute MFCC from")
    n_fft = int(round(WINDOW_S * sample_rate_hz))
    hop_length = int(round(HOP_S * sample_rate_hz))
    mfcc = librosa.feature.mfcc(
        y=audio, sr=sample_rate_hz, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length, center=True
    )
    return np.ascontiguousarray(mfcc.T, dtype=np.float32)


def fit_to_video(
    audio: np.ndarray, sample_rate_hz: int, n_video_frames: int, fps: float = 25.0
) -> np.ndarray:
    """Zero-pad or trim the audio to the video's duration, so MFCC frames line up with video frames."""
    n_samples = int(round(n_video_frames * sample_rate_hz / fps))
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[:n_samples]
    return np.pad(audio, (0, n_samples - audio.size))


def is_silent(audio: np.ndarray) -> bool:
    return audio.size == 0 or float(np.max(np.abs(audio))) < SILENCE_PEAK


def expected_mfcc_frames(n_video_frames: int) -> int:
    return MFCC_PER_VIDEO_FRAME * n_video_frames + 1


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """A wav file -> (mono float32 samples, sample rate); unreadable or empty -> InputError."""
    import soundfile

    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: audio file not found")
    try:
        audio, sample_rate_hz = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (RuntimeError, soundfile.LibsndfileError) as exc:
        raise InputError(f"{path}: cannot read audio ({str(exc).splitlines()[0]})") from None
    if audio.shape[0] == 0:
        raise InputError(f"{path}: zero-length audio")
    return audio.mean(axis=1), int(sample_rate_hz)
