"""Let other local accounts run this Python on this checkout.

A test that runs code as another account (``nobody``, an endpoint's user) needs that account to
reach the interpreter and the repository: a folder on the way that others may not enter
(``/root`` holding pyenv's interpreter, say) gets search permission for others (``o+x``:
enter, not list). Nothing is made readable that was not.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

#: The repository this test run imports stembench from.
REPO = Path(__file__).resolve().parents[2]


def let_others_run_this_python() -> None:
    """Give others search permission on every folder above the interpreter and the checkout."""
    for target in (Path(os.path.realpath(sys.executable)), REPO):
        for folder in target.parents:
            mode = folder.stat().st_mode
            if not mode & stat.S_IXOTH:
                os.chmod(folder, stat.S_IMODE(mode) | stat.S_IXOTH)
