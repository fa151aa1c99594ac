"""Simulated FTMS treadmills served over a real BLE host stack (Bumble)."""
