"""The `chatd` command line: `main` is the console entry point (pyproject's [project.scripts])."""

from chatd.cli.main import main

__all__ = ["main"]
