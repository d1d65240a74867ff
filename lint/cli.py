"""The ``wd-lint`` command line."""

from __future__ import annotations

import argparse
from typing import Optional, Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wd-lint", description="Find weight-decay mistakes in PyTorch code.")
    parser.add_argument("paths", nargs="*", help="files or directories (default: the current directory)")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    build_parser().print_help()
    return 0
