"""One clip's performance: the syllable script drives both the voice and the mouth, the emotion shapes
face and voice, plus head motion and blinks. Everything is a function of (seed, clip id)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from emohead.data.layout import ClipKey
from emohead.data.sample.config import SampleConfig
from emohead.data.sample.expressions import VoicePattern, face_pattern, voice_pattern
from emohead.data.sample.face import apply_blink, apply_expression, apply_speech, head_transform, normalise
from emohead.data.sample.identities import Identity, identity_for
from emohead.data.sample.script import plan_syllables, stable_seed
from emohead.data.sample.speech import Syllable, Voice, syllable_envelope, synthesize

# Inner-lip gap at full loudness of /a/, in interocular distances; other vowels open less.
MAX_OPENING = 0.36
VOWEL_OPENNESS = {"a": 1.0, "o": 0.75, "e": 0.6, "u": 0.45, "i": 0.4}
ROUNDED, SPREAD = ("o", "u"), ("i", "e")
NEUTRAL_TILT_CORNER_HZ = 700.0
BLINKS_PER_S = 0.35
BLINK_S = 0.2


@dataclass(frozen=True)
class Performance:
    key: ClipKey
    fps: int
    sample_rate_hz: int
    audio: np.ndarray  # (n_samples,) float32 mono speech
    landmarks: np.ndarray  # (n_frames, 68, 2) float32, normalised face coordinates (see face.py)
    head: np.ndarray  # (n_frames, 4): angle_rad, scale, tx, ty, the rigid part of `landmarks`
    mouth_opening: np.ndarray  # (n_frames,) intended inner-lip gap, interocular distances
    syllables: tuple[Syllable, ...]

    @property
    def n_frames(self) -> int:
        return len(self.landmarks)


def resolve_voice(identity: Identity, pattern: VoicePattern) -> Voice:
    return Voice(
        f0_hz=identity.f0_hz * 2 ** (pattern.f0_semitones / 12),
        f0_range_semitones=2.5 * 2**pattern.f0_range,
        loudness_gain=10 ** (pattern.loudness_db / 20),
        tilt_corner_hz=NEUTRAL_TILT_CORNER_HZ * 2**pattern.brightness,
        breathiness=0.04 + pattern.breathiness,
        jitter=0.004 + pattern.jitter,
        formant_scale=identity.formant_scale * 2**pattern.formant_shift,
        f1_scale=2**pattern.f1_shift,
        tremor_semitones=pattern.tremor_semitones,
        final_rise_semitones=pattern.final_rise_semitones,
        timbre_hz=pattern.timbre_hz,
        timbre_db=pattern.timbre_db,
    )


def frame_envelopes(syllables: list[Syllable], n_frames: int, fps: int) -> np.ndarray:
    """(n_frames, n_syllables): each syllable's amplitude envelope averaged over each frame's interval."""
    sub = 8
    times = (np.arange(n_frames * sub) + 0.5) / (fps * sub)
    per_syllable = np.stack([syllable_envelope(s, times) for s in syllables], axis=1)
    return per_syllable.reshape(n_frames, sub, -1).mean(axis=1)


def _smooth_wander(rng: np.random.Generator, times_s: np.ndarray) -> np.ndarray:
    """A smooth zero-mean path in [-1, 1]: two slow sinusoids with random frequency and phase."""
    freqs = rng.uniform(0.25, 0.9, 2)
    phases = rng.uniform(0, 2 * np.pi, 2)
    return 0.5 * np.sin(2 * np.pi * freqs[:, None] * times_s + phases[:, None]).sum(axis=0)


def blink_closure(rng: np.random.Generator, times_s: np.ndarray, duration_s: float) -> np.ndarray:
    closure = np.zeros_like(times_s)
    for _ in range(rng.poisson(BLINKS_PER_S * duration_s)):
        start = rng.uniform(0.1, max(0.2, duration_s - BLINK_S - 0.1))
        u = (times_s - start) / BLINK_S
        closure = np.maximum(closure, np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)), 0))
    return closure


def perform(config: SampleConfig, key: ClipKey) -> Performance:
    """The deterministic performance of clip `key` (same config and key -> identical arrays)."""
    rng = np.random.default_rng(stable_seed(config.seed, key.clip_id))
    identity = identity_for(key.actor)
    face, voice_shape = face_pattern(key.emotion, key.level), voice_pattern(key.emotion, key.level)
    syllables, end_s = plan_syllables(config.seed, key.sentence, config.duration_s, voice_shape.tempo, rng)
    n_frames = math.ceil(end_s * config.fps)
    n_samples = round(n_frames * config.sample_rate_hz / config.fps)
    audio = synthesize(syllables, resolve_voice(identity, voice_shape), n_samples, config.sample_rate_hz, rng)

    envelopes = frame_envelopes(syllables, n_frames, config.fps)  # the same envelopes the audio used
    openness = np.array([VOWEL_OPENNESS[s.vowel] for s in syllables])
    gains = np.array([s.gain for s in syllables])
    shape_weight = np.clip(envelopes / gains * 1.5, 0, 1)  # lips hold the vowel's shape while it sounds
    rounding = shape_weight @ np.array([s.vowel in ROUNDED for s in syllables], float)
    spreading = shape_weight @ np.array([s.vowel in SPREAD for s in syllables], float)
    opening = MAX_OPENING * (1 + face.speech_open_gain) * (envelopes @ openness) + face.jaw_drop

    times = np.arange(n_frames) / config.fps
    motion = 1 + face.head_motion
    stressed_beat = envelopes @ np.array([s.stress for s in syllables])  # small nods on stressed syllables
    head = np.stack([
        np.deg2rad(1.5 * motion * _smooth_wander(rng, times) + face.head_roll_deg),
        1 + 0.01 * motion * _smooth_wander(rng, times),
        0.05 * motion * _smooth_wander(rng, times),
        0.04 * motion * _smooth_wander(rng, times) + face.head_pitch + 0.03 * motion * stressed_beat,
    ], axis=1)
    blinks = blink_closure(rng, times, n_frames / config.fps)

    rest, _, _ = normalise(identity.rest_landmarks)
    expressive = apply_expression(rest, face)
    frames = np.empty((n_frames, 68, 2), np.float32)
    for i in range(n_frames):
        points = apply_speech(expressive, opening[i], rounding[i], spreading[i])
        frames[i] = head_transform(apply_blink(points, blinks[i]), *head[i])
    return Performance(key, config.fps, config.sample_rate_hz, audio, frames, head.astype(np.float32),
                       opening.astype(np.float32), tuple(syllables))
