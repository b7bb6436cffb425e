"""Version of the stembench package (also the scorer and generator versions' base)."""

__version__ = "0.1.0"
