"""Speech-like audio: a glottal source at pitch F0 through vowel formant filters, shaped into syllables.

The amplitude envelope of each syllable (`syllable_envelope`) is shared with the face animation, so the
mouth opens exactly when, and as much as, the voice gets loud.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import butter, lfilter, sosfilt

# Peterson & Barney-like formants (Hz) and bandwidths of an adult male vocal tract.
FORMANTS_HZ: dict[str, tuple[float, float, float, float]] = {
    "a": (730, 1090, 2440, 3400),
    "e": (530, 1840, 2480, 3500),
    "i": (270, 2290, 3010, 3700),
    "o": (570, 840, 2410, 3300),
    "u": (300, 870, 2240, 3300),
}
BANDWIDTHS_HZ = (80.0, 100.0, 140.0, 200.0)
NASAL_FORMANTS_HZ = (250.0, 1100.0, 2400.0, 3300.0)
# How loud each vowel is relative to /a/ (open vowels carry more energy).
VOWEL_LOUDNESS = {"a": 1.0, "o": 0.92, "e": 0.88, "u": 0.78, "i": 0.78}
ONSET_S = {"": 0.0, "stop": 0.05, "fricative": 0.07, "nasal": 0.06}


@dataclass(frozen=True)
class Syllable:
    onset: str  # "", "stop", "fricative" or "nasal": the consonant before the vowel
    vowel: str  # a, e, i, o, u
    start_s: float  # the consonant starts here; the vowel follows it
    end_s: float
    stress: float  # 0..1: stressed syllables are louder, longer and carry the pitch accent

    @property
    def vowel_start_s(self) -> float:
        return self.start_s + ONSET_S[self.onset]

    @property
    def gain(self) -> float:
        return (0.7 + 0.3 * self.stress) * VOWEL_LOUDNESS[self.vowel]


@dataclass(frozen=True)
class Voice:
    """A voice resolved for one clip: speaker x emotion x level."""

    f0_hz: float
    f0_range_semitones: float  # size of the pitch accents
    loudness_gain: float  # linear
    tilt_corner_hz: float  # the glottal source falls -6 dB/octave above this (spectral tilt)
    breathiness: float  # aspiration noise relative to the voiced source
    jitter: float  # share of F0
    formant_scale: float
    f1_scale: float
    tremor_semitones: float
    final_rise_semitones: float
    timbre_hz: float  # a voice-quality resonance (pressed, nasal, pharyngeal voice) at this frequency
    timbre_db: float  # its gain; < 0 is a notch (nasal antiresonance)


def syllable_envelope(syllable: Syllable, times_s: np.ndarray) -> np.ndarray:
    """The vowel's amplitude over time: raised-cosine attack (30%), sustain, raised-cosine release (40%)."""
    start, end = syllable.vowel_start_s, syllable.end_s
    span = max(end - start, 1e-3)
    u = np.clip((times_s - start) / span, 0.0, 1.0)
    attack = 0.5 - 0.5 * np.cos(np.pi * np.clip(u / 0.3, 0, 1))
    release = 0.5 - 0.5 * np.cos(np.pi * np.clip((1 - u) / 0.4, 0, 1))
    inside = (times_s >= start) & (times_s <= end)
    return np.where(inside, np.minimum(attack, release), 0.0) * syllable.gain


def _resonator_sos(freqs_hz, bandwidths_hz, sample_rate_hz: int) -> np.ndarray:
    """Cascade of two-pole resonators, unit gain at DC each (a formant filter, Klatt style)."""
    rows = []
    for freq, bw in zip(freqs_hz, bandwidths_hz, strict=True):
        freq = min(freq, 0.45 * sample_rate_hz)
        r = np.exp(-np.pi * bw / sample_rate_hz)
        a1, a2 = -2 * r * np.cos(2 * np.pi * freq / sample_rate_hz), r * r
        rows.append([1 + a1 + a2, 0, 0, 1, a1, a2])
    return np.array(rows)


def _pitch_hz(syllables: list[Syllable], voice: Voice, times_s: np.ndarray, rng: np.random.Generator):
    duration = times_s[-1] if times_s.size else 1.0
    semitones = -2.0 * times_s / duration  # declination over the sentence
    for syl in syllables:  # pitch accents on stressed syllables
        centre, half = (syl.start_s + syl.end_s) / 2, (syl.end_s - syl.start_s) / 2 + 0.05
        bump = np.clip(1 - ((times_s - centre) / half) ** 2, 0, None)
        semitones += voice.f0_range_semitones * (syl.stress - 0.3) * bump
    last = np.clip((times_s - 0.7 * duration) / (0.3 * duration), 0, 1)
    semitones += voice.final_rise_semitones * last**2
    semitones += voice.tremor_semitones * np.sin(2 * np.pi * 7.0 * times_s + rng.uniform(0, 2 * np.pi))
    # Jitter: an independent pitch perturbation every ~5 ms (about one glottal cycle).
    hold = max(1, int(len(times_s) / max(duration, 1e-3) * 0.005))
    steps = rng.standard_normal(len(times_s) // hold + 1)
    jitter = 1 + voice.jitter * np.repeat(steps, hold)[: len(times_s)]
    return voice.f0_hz * 2 ** (semitones / 12) * jitter


def _glottal_source(f0_hz: np.ndarray, voice: Voice, sample_rate_hz: int) -> np.ndarray:
    """A pulse per glottal cycle (flat spectrum) through a one-pole low-pass: the spectral tilt."""
    phase = np.cumsum(f0_hz / sample_rate_hz)
    pulses = -np.diff(phase % 1.0, prepend=0.0)  # +1 at each cycle start, small negative ramp between
    pole = np.exp(-2 * np.pi * voice.tilt_corner_hz / sample_rate_hz)
    source = lfilter([1 - pole], [1, -pole], pulses)
    return source / (np.std(source) + 1e-9)


def _peaking_eq(freq_hz: float, gain_db: float, q: float, sample_rate_hz: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ audio-EQ-cookbook peaking filter (b, a)."""
    amp = 10 ** (gain_db / 40)
    w0 = 2 * np.pi * min(freq_hz, 0.45 * sample_rate_hz) / sample_rate_hz
    alpha = np.sin(w0) / (2 * q)
    b = np.array([1 + alpha * amp, -2 * np.cos(w0), 1 - alpha * amp])
    a = np.array([1 + alpha / amp, -2 * np.cos(w0), 1 - alpha / amp])
    return b / a[0], a / a[0]


def _noise_burst(rng, n: int, sos: np.ndarray) -> np.ndarray:
    burst = sosfilt(sos, rng.standard_normal(n))
    return burst / (np.std(burst) + 1e-9) * np.hanning(n)


def synthesize(syllables: list[Syllable], voice: Voice, n_samples: int, sample_rate_hz: int,
               rng: np.random.Generator) -> np.ndarray:
    """Mono float32 speech of n_samples: voiced vowels, consonant onsets, pauses, a faint noise floor."""
    sr = sample_rate_hz
    times = np.arange(n_samples) / sr
    source = _glottal_source(_pitch_hz(syllables, voice, times, rng), voice, sr)
    aspiration = sosfilt(butter(2, 500, "highpass", fs=sr, output="sos"), rng.standard_normal(n_samples))
    source = source + voice.breathiness * 2.5 * aspiration / (np.std(aspiration) + 1e-9)
    out = np.zeros(n_samples)
    hiss = butter(4, [3500, min(9000, 0.45 * sr)], "bandpass", fs=sr, output="sos")
    click = butter(2, [1000, 4000], "bandpass", fs=sr, output="sos")
    for syl in syllables:
        lo, hi = max(0, int((syl.start_s - 0.02) * sr)), min(n_samples, int((syl.end_s + 0.02) * sr))
        if hi <= lo:
            continue
        formants = np.array(FORMANTS_HZ[syl.vowel]) * voice.formant_scale
        formants[0] *= voice.f1_scale
        vowel = sosfilt(_resonator_sos(formants, BANDWIDTHS_HZ, sr), source[lo:hi])
        vowel /= np.sqrt(np.mean(vowel**2)) + 1e-9  # unit RMS: loudness comes from the envelope alone
        out[lo:hi] += vowel * syllable_envelope(syl, times[lo:hi])
        out += _consonant(syl, source, times, sr, rng, hiss, click)
    if voice.timbre_db:
        out = lfilter(*_peaking_eq(voice.timbre_hz, voice.timbre_db, 1.5, sr), out)
    out += 0.002 * rng.standard_normal(n_samples)  # room noise: silence is never digital zero
    return np.clip(out * 0.12 * voice.loudness_gain, -0.98, 0.98).astype(np.float32)


def _consonant(syl: Syllable, source, times, sr, rng, hiss, click) -> np.ndarray:
    """The onset consonant as a sparse full-length signal (zero outside its few tens of ms)."""
    out = np.zeros(len(times))
    lo = int(syl.start_s * sr)
    n = int(ONSET_S[syl.onset] * sr)
    if n <= 0 or lo + n > len(times):
        return out
    level = syl.gain
    if syl.onset == "fricative":
        out[lo : lo + n] = 0.3 * level * _noise_burst(rng, n, hiss)
    elif syl.onset == "stop":  # closure silence, then a short release burst
        burst = int(0.012 * sr)
        out[lo + n - burst : lo + n] = 0.5 * level * _noise_burst(rng, burst, click)
    elif syl.onset == "nasal":
        hum = sosfilt(_resonator_sos(NASAL_FORMANTS_HZ, (100, 200, 300, 400), sr), source[lo : lo + n])
        out[lo : lo + n] = 0.35 * level * hum / (np.std(hum) + 1e-9) * np.hanning(n)
    return out
