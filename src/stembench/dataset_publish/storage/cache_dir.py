"""Where the local dataset cache (and its verification records) lives."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["default_cache_dir", "home_cache_dir"]


def default_cache_dir() -> Path:
    """Return the cache directory: ``$STEMBENCH_CACHE``, else ``~/.cache/stembench``."""
    env = os.environ.get("STEMBENCH_CACHE")
    if env:
        return Path(env).expanduser()
    return home_cache_dir()


def home_cache_dir() -> Path:
    """Return ``~/.cache/stembench`` of the user running this, whatever ``$STEMBENCH_CACHE``
    says (for files of this user's own, e.g. twin datasets, never a shared cache)."""
    return Path.home() / ".cache" / "stembench"
