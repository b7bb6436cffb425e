"""Where the local dataset cache (and its verification records) lives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir"]


def default_cache_dir() -> Path:
    """Return the cache directory: ``$STEMBENCH_CACHE``, else ``~/.cache/stembench``."""
    env = os.environ.get("STEMBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "stembench"
