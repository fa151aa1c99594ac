"""Riders over the store and the programs: creating and changing them, starting a workout for
one, their feedback and progression (docs/programs.md). `api.py` holds the values and the
`RiderDesk` seam MQTT and the CLI speak (no SQLAlchemy); `service.py` the implementation."""
