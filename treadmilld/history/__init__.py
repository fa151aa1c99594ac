"""Workout history: what was recorded, where it is kept, and how it leaves (FIT, TCX, CSV)."""
