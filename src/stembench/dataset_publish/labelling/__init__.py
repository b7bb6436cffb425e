"""The labelling assistant: propose sure/unsure column labels for a real image, and the pictures
and HTML page a person reviews them with.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC: dict[str, str] = {
    "DISPLAY_SMOOTHING_ANGSTROM": "review",
    "LabelProposal": "propose",
    "MAX_CHI2": "propose",
    "MIN_RELATIVE_AMPLITUDE": "propose",
    "MIN_T": "propose",
    "WIDTH_RANGE": "propose",
    "WINDOW_FRACTION": "propose",
    "label_command": "cli",
    "plot_overlay": "review",
    "propose_labels": "propose",
    "write_review_html": "review",
}
"""Public name -> the module of this sub-package that defines it."""

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    try:
        module = _PUBLIC[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
