"""The ``calguard`` command: ``serve``, ``demo``, ``flags``, ``eval-offline``."""

from guard.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
