"""The command line, ``python -m explainers …`` (or ``python -m cli …``): the contract the tests, the
benchmark and scripts rely on. See cli.main."""

from cli.main import main

__all__ = ["main"]
