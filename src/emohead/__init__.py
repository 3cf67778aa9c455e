"""emohead: emotional talking-head generation (MSEF + AATU) as a reproducible DVC pipeline."""

__version__ = "0.1.0"
