"""Batch-system commands where a site keeps them, for tests that write endpoint directories.

``stembench endpoint config --multi-user`` looks up ``sbatch`` (``qsub``) and the commands
beside it on ``PATH`` and puts their folder on the user endpoints' ``PATH``; it never runs
them. The files written here exist to be found; running one fails.
"""

from __future__ import annotations

from pathlib import Path

from stembench.endpoints.user_environment import SUBMIT_COMMANDS


def batch_commands(folder: Path) -> Path:
    """Create every template's batch commands in ``folder`` (e.g. ``/opt/slurm/bin``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for command in (name for names in SUBMIT_COMMANDS.values() for name in names):
        path = folder / command
        path.write_text(f"#!/bin/sh\necho '{command}: not a batch system' >&2\nexit 1\n")
        path.chmod(0o755)
    return folder
