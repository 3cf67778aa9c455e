"""Landmarks, MFCC, face crops and the Parquet schemas every later stage reads."""
