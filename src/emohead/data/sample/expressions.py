"""How each of MEAD's eight emotions shows in the face and the voice, and how the level scales it.

Face values are landmark offsets in interocular distances (up = positive); voice values are changes
from the neutral voice. Both are the level-3 extremes' direction; `intensity` scales them per level.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

# MEAD's levels are weak, medium, strong; even level 1 must differ from neutral.
LEVEL_INTENSITY = {1: 0.7, 2: 0.9, 3: 1.1}


@dataclass(frozen=True)
class FacePattern:
    brow_raise: float = 0.0  # whole brows up
    brow_inner_raise: float = 0.0  # inner brow ends up (sad, fear) or down (angry, < 0)
    brow_squeeze: float = 0.0  # inner brow ends toward the midline
    eye_open: float = 0.0  # upper lids up (wide eyes) or down (narrowed, < 0)
    mouth_corner_up: float = 0.0  # both corners up (smile) or down (< 0)
    mouth_corner_asym: float = 0.0  # the image-right corner only (contempt's unilateral smirk)
    mouth_width: float = 0.0  # corners outward (smile, fear's stretched lips) or inward
    upper_lip_raise: float = 0.0  # disgust's raised upper lip
    jaw_drop: float = 0.0  # a constant opening (surprise)
    speech_open_gain: float = 0.0  # more (angry) or less (sad) mouth motion per syllable, as a share
    head_pitch: float = 0.0  # head down (> 0) or up, interocular distances
    head_roll_deg: float = 0.0  # a steady tilt
    head_motion: float = 0.0  # more (angry) or less (sad) head movement, as a share


@dataclass(frozen=True)
class VoicePattern:
    f0_semitones: float = 0.0  # pitch level
    f0_range: float = 0.0  # log2 of the intonation range factor
    loudness_db: float = 0.0
    tempo: float = 0.0  # log2 of the syllable-rate factor
    brightness: float = 0.0  # octaves the spectral-tilt corner moves up (bright, tense) or down (dark, lax)
    breathiness: float = 0.0  # aspiration noise mixed into the voiced source
    jitter: float = 0.0  # cycle-to-cycle pitch perturbation, as a share of F0
    formant_shift: float = 0.0  # log2 of a formant scale (smiling shortens the tract, disgust lengthens)
    f1_shift: float = 0.0  # log2 of an extra F1 factor (wider jaw opening in angry/surprised speech)
    tremor_semitones: float = 0.0  # fear's 7 Hz pitch tremor
    final_rise_semitones: float = 0.0  # surprise's rising sentence end (< 0: falling, sad)
    timbre_db: float = 0.0  # a voice-quality resonance (pressed, nasal, pharyngeal): gain ...
    timbre_hz: float = 1000.0  # ... at this frequency (not scaled by level)


UNSCALED = ("timbre_hz",)


FACES: dict[str, FacePattern] = {
    "angry": FacePattern(brow_raise=-0.05, brow_inner_raise=-0.10, brow_squeeze=0.06, eye_open=0.03,
                         mouth_corner_up=-0.03, mouth_width=-0.04, upper_lip_raise=0.03,
                         speech_open_gain=0.25, head_pitch=0.04, head_motion=0.6),
    "contempt": FacePattern(eye_open=-0.04, mouth_corner_asym=0.12, mouth_width=0.02, head_roll_deg=3.0,
                            head_pitch=-0.05, speech_open_gain=-0.2),
    "disgusted": FacePattern(brow_raise=-0.06, brow_squeeze=0.05, eye_open=-0.07, mouth_corner_up=-0.05,
                             upper_lip_raise=0.10, speech_open_gain=-0.15, head_pitch=-0.03),
    "fear": FacePattern(brow_raise=0.09, brow_inner_raise=0.08, brow_squeeze=0.05, eye_open=0.09,
                        mouth_corner_up=-0.03, mouth_width=0.08, jaw_drop=0.04, head_motion=0.3),
    "happy": FacePattern(brow_raise=0.02, eye_open=-0.04, mouth_corner_up=0.12, mouth_width=0.10,
                         speech_open_gain=0.1, head_motion=0.3),
    "neutral": FacePattern(),
    "sad": FacePattern(brow_raise=-0.02, brow_inner_raise=0.12, brow_squeeze=0.03, eye_open=-0.06,
                       mouth_corner_up=-0.09, speech_open_gain=-0.25, head_pitch=0.08, head_motion=-0.5),
    "surprised": FacePattern(brow_raise=0.16, eye_open=0.11, mouth_width=-0.05, jaw_drop=0.12,
                             speech_open_gain=0.1, head_pitch=-0.04),
}

VOICES: dict[str, VoicePattern] = {
    "angry": VoicePattern(f0_semitones=4, f0_range=0.6, loudness_db=7, tempo=0.2, brightness=2.0,
                          jitter=0.004, f1_shift=0.25, timbre_db=9, timbre_hz=1400),
    "contempt": VoicePattern(f0_semitones=-2, f0_range=-0.2, loudness_db=-2, tempo=-0.25, brightness=-0.7,
                             jitter=0.03, formant_shift=-0.08, final_rise_semitones=-2, timbre_db=-12,
                             timbre_hz=900),
    "disgusted": VoicePattern(f0_semitones=-3, f0_range=-0.3, loudness_db=-3, tempo=-0.25, brightness=-1.0,
                              breathiness=0.2, jitter=0.01, formant_shift=-0.2, timbre_db=8, timbre_hz=2600),
    "fear": VoicePattern(f0_semitones=6, f0_range=-0.5, loudness_db=-1, tempo=0.3, brightness=-0.3,
                         breathiness=0.5, jitter=0.015, formant_shift=0.12, tremor_semitones=0.9, timbre_db=6,
                         timbre_hz=3600),
    "happy": VoicePattern(f0_semitones=4, f0_range=0.9, loudness_db=3, tempo=0.05, brightness=1.0,
                          formant_shift=0.18, timbre_db=6, timbre_hz=2000),
    "neutral": VoicePattern(),
    "sad": VoicePattern(f0_semitones=-4, f0_range=-1.2, loudness_db=-7, tempo=-0.35, brightness=-2.0,
                        breathiness=0.35, formant_shift=-0.1, final_rise_semitones=-2, timbre_db=-6,
                        timbre_hz=1600),
    "surprised": VoicePattern(f0_semitones=7, f0_range=1.2, loudness_db=4, tempo=-0.1, brightness=1.2,
                              breathiness=0.1, formant_shift=0.1, f1_shift=0.3, final_rise_semitones=5,
                              timbre_db=6, timbre_hz=500),
}


def _scaled(pattern, intensity: float):
    return type(pattern)(**{
        f.name: getattr(pattern, f.name) * (1.0 if f.name in UNSCALED else intensity) for f in fields(pattern)
    })


def face_pattern(emotion: str, level: int) -> FacePattern:
    return _scaled(FACES[emotion], LEVEL_INTENSITY[level])


def voice_pattern(emotion: str, level: int) -> VoicePattern:
    return _scaled(VOICES[emotion], LEVEL_INTENSITY[level])
