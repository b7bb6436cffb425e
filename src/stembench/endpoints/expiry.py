"""A copy of a shard that its sender gave up on stops instead of working for nobody.

Globus Compute cannot cancel a task: after the client's task deadline (counted from
submission, since the SDK reports no "running" state) a shard still waiting in a busy
endpoint's queue is sent again, and the first copy runs later all the same. So each copy
carries ``not_after_unix`` (:class:`~stembench.endpoints.requests.ShardRequest`): its
sender's wall clock at submission plus its task deadline, the time after which nobody reads
its result. The endpoint function checks it when it starts, before the dataset or the model
is opened, and before each model call; a copy past it stops there and returns an *expired*
result (:func:`expired_result`): ``ok`` false, ``expired`` true, the images it finished.

Clocks: the sender's and the endpoint's wall clocks differ. A copy counts as expired once
the endpoint's clock is past ``not_after_unix + CLOCK_SKEW_MARGIN_S``. With the endpoint's
clock behind the sender's by ``d`` seconds, a given-up copy still works for at most
``d + CLOCK_SKEW_MARGIN_S`` seconds plus the model call it is in (at most the image deadline
per image of a batch) after its sender gave it up; with the endpoint's clock ahead by up to
the margin, no copy is stopped before its sender gives it up. A clock ahead by more stops
copies early: the sender, still waiting, gets the expired result and sends the shard again
(each attempt counts), and the message says to check the clocks. A request without
``not_after_unix`` (an older sender) never expires.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from stembench.errors import StembenchError

__all__ = ["CLOCK_SKEW_MARGIN_S", "ShardExpiredError", "check_not_expired", "expired_result"]

#: Seconds past ``not_after_unix`` (by the endpoint's clock) before a copy counts as expired:
#: the difference between the sender's and the endpoint's clocks this tolerates.
CLOCK_SKEW_MARGIN_S = 10.0


def _now() -> float:
    return time.time()


class ShardExpiredError(StembenchError):
    """A shard's copy is past the time its sender wanted its result by.

    Attributes
    ----------
    finished : list of dict
        The entries of the images it finished before it stopped.
    """

    def __init__(self, message: str, finished: Sequence[dict[str, Any]] = ()) -> None:
        super().__init__(message)
        self.finished = list(finished)


def check_not_expired(not_after_unix: float | None, *, n_images: int,
                      finished: Sequence[dict[str, Any]] = ()) -> None:
    """Raise :class:`ShardExpiredError` when this copy's sender no longer wants its result.

    Parameters
    ----------
    not_after_unix : float or None
        The request's ``not_after_unix``; ``None`` never expires.
    n_images : int
        Images in the shard, for the message.
    finished : sequence of dict, optional
        Entries of the images finished so far (kept in the error).
    """
    if not_after_unix is None:
        return
    late = _now() - (not_after_unix + CLOCK_SKEW_MARGIN_S)
    if late <= 0:
        return
    where = (f"after {len(finished)} of {n_images} images" if finished
             else "before its first model call")
    raise ShardExpiredError(
        f"expired: its sender stopped waiting for this copy at {not_after_unix:.0f} (Unix "
        f"time) and it was still running {late + CLOCK_SKEW_MARGIN_S:.0f} s later by the "
        f"endpoint's clock, so it stopped {where}; if the sender was still waiting, the "
        f"endpoint's clock is more than {CLOCK_SKEW_MARGIN_S:g} s ahead of the sender's",
        finished)


def expired_result(result: dict[str, Any], error: ShardExpiredError) -> dict[str, Any]:
    """``result`` (the shard result begun so far) marked expired, with the finished images.

    Parameters
    ----------
    result : dict
        The shard result as far as it was filled in (``shard_id``, ``protocol``, ...).
    error : ShardExpiredError
        Why the copy stopped, and the images it finished.

    Returns
    -------
    dict
        ``result`` with ``ok`` false, ``expired`` true, ``error`` the reason and
        ``images`` the finished entries (possibly none).
    """
    return {**result, "ok": False, "expired": True, "error": str(error),
            "images": error.finished}
