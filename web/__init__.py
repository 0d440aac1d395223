"""The browser front end: sources in ``src/``, bundles in ``static/`` (package data)."""

from pathlib import Path

STATIC = Path(__file__).parent / "static"
