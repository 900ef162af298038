"""Release tooling: hashed lock files, reproducible builds, SBOMs, provenance and the signed release layout.

Run from the repository root: `python -m scripts.release lock|check-lock|build`. Not part of the wheel.
"""
