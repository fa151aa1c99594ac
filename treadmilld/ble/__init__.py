"""The daemon's hands on a treadmill: an FTMS client over bleak, behind `TreadmillLink`."""
