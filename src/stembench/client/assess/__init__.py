"""``stembench assess``: where an image sits on the benchmark's quality axes, and which models
are reliable on it.

The lattice, column fit and estimator modules moved to :mod:`stembench.imaging`; their old
paths here still import, with a :class:`DeprecationWarning`, for one release.
"""

from __future__ import annotations

from stembench._moved import install_moved_modules

install_moved_modules(__name__, {"columns": "stembench.imaging.columns",
                                 "estimate": "stembench.imaging.estimate",
                                 "lattice": "stembench.imaging.lattice"})
