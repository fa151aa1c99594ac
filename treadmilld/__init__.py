"""treadmilld: reverse-walking interval profiles on Bluetooth FTMS treadmills, over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("treadmilld")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
