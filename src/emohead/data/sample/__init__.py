"""A small generated dataset in MEAD's exact layout and raw formats (data.source: sample).

Two identities from a real photograph are animated by a per-clip performance whose syllables drive both
the synthesized voice and the mouth; each emotion has its own face and voice pattern, scaled by level.
"""

from emohead.data.sample.config import SampleConfig
from emohead.data.sample.generate import clip_keys, generate_dataset
from emohead.data.sample.performance import Performance, perform

__all__ = ["Performance", "SampleConfig", "clip_keys", "generate_dataset", "perform"]
