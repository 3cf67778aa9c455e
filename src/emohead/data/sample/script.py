"""A sentence as a syllable timeline: what is said (fixed per sentence index) and how fast (per emotion)."""

from __future__ import annotations

import hashlib

import numpy as np

from emohead.data.sample.speech import ONSET_S, Syllable

VOWELS = ("a", "e", "i", "o", "u")
ONSETS = ("", "stop", "fricative", "nasal")
NEUTRAL_SYLLABLES_PER_S = 4.5
LEAD_IN_S = (0.2, 0.35)  # silence before the first syllable: the clip starts with a closed mouth
LEAD_OUT_S = (0.25, 0.4)


def stable_seed(*parts: object) -> int:
    """A seed from text (sha256, not Python's salted hash()), identical in every process and run."""
    digest = hashlib.sha256("/".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def plan_syllables(seed: int, sentence: int, duration_s: float, tempo: float,
                   clip_rng: np.random.Generator) -> tuple[list[Syllable], float]:
    """Syllables of sentence `sentence` spoken at 2**tempo times the neutral rate; returns (syllables, end_s).

    The text (vowels, consonants, stresses, word breaks, syllable count) depends only on (seed, sentence),
    like MEAD's sentences shared across emotions; timing jitter comes from the clip's own generator.
    """
    text = np.random.default_rng(stable_seed(seed, "sentence", sentence))
    speaking_s = duration_s * text.uniform(0.8, 1.2) - np.mean(LEAD_IN_S) - np.mean(LEAD_OUT_S)
    count = max(3, int(round(speaking_s * NEUTRAL_SYLLABLES_PER_S * 0.8)))
    vowels = text.choice(VOWELS, count)
    onsets = text.choice(ONSETS, count, p=[0.25, 0.3, 0.25, 0.2])
    stresses = text.uniform(0, 1, count) ** 2
    lengths = text.uniform(0.8, 1.2, count) * (1 + 0.35 * stresses)
    word_breaks = text.uniform(0, 1, count) < 0.22  # a short pause after this syllable
    syllable_s = 1 / (NEUTRAL_SYLLABLES_PER_S * 2**tempo)
    time = clip_rng.uniform(*LEAD_IN_S)
    syllables = []
    for i in range(count):
        length = max(lengths[i] * syllable_s * clip_rng.uniform(0.92, 1.08), ONSET_S[onsets[i]] + 0.06)
        syllables.append(Syllable(str(onsets[i]), str(vowels[i]), time, time + length, float(stresses[i])))
        time += length
        if word_breaks[i] and i < count - 1:
            time += syllable_s * clip_rng.uniform(0.5, 0.9)
    return syllables, time + clip_rng.uniform(*LEAD_OUT_S)
