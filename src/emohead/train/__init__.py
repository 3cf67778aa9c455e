"""Training loops and their shared helpers (seeding, checkpoints, divergence checks)."""
