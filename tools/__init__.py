"""Maintainer tools, run from a checkout of the repository (``python -m tools.<name>``); not part of the installed package."""
