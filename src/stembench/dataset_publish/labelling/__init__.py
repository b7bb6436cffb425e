"""The labelling assistant: propose sure/unsure column labels for a real image, and the pictures
and HTML page a person reviews them with.

The names below are the public API of this sub-package; each is imported from its module
on first use, so importing one part does not import the others.
"""

from __future__ import annotations

from stembench._lazy import lazy_public

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

__getattr__, __dir__, __all__ = lazy_public(__name__, _PUBLIC)
