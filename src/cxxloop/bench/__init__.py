"""The benchmark behind `python -m cxxloop bench`; see bench/README.md."""

from .harness import main

__all__ = ["main"]
