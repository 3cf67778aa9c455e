"""MEAD layout, download, resampling and the generated sample dataset."""
