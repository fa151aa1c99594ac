"""The `treadmilld` command line."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from treadmilld import __version__


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="treadmilld")
    parser.add_argument("--version", action="version", version=__version__)
    parser.parse_args(argv)
    parser.print_help()
    return 0
