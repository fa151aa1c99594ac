"""Profiles, the planner, the safety governor, the executor and the calorie model."""
