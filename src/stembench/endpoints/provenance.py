"""Where and with what a result was produced: host, device, package versions."""

from __future__ import annotations

import platform
import socket
import sys
from datetime import UTC, datetime
from typing import Any

from stembench._version import __version__

__all__ = ["runtime_provenance"]


def _device_description() -> str:
    """Name the accelerator a loaded framework sees, without importing any framework."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return f"cuda:{torch.cuda.get_device_name(0)}"
    tf = sys.modules.get("tensorflow")
    if tf is not None and tf.config.list_physical_devices("GPU"):
        return "gpu:tensorflow"
    return f"cpu:{platform.processor() or platform.machine()}"


def runtime_provenance() -> dict[str, Any]:
    """Describe the machine and software that ran a task (JSON-safe)."""
    return {
        "stembench_version": __version__,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "device": _device_description(),
        "finished_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }
