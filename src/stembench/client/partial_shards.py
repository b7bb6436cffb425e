"""The images a shard's stopped copy finished, kept so that nothing computed is lost.

A copy that its endpoint stopped part-way (expired: :mod:`stembench.endpoints.expiry`)
returns the images it finished. The client keeps them, sends only the shard's other images
next time, and writes the shard's result with all of them, under the shard's own id: the
same as a local worker's progress log does (:mod:`stembench.endpoints.progress`).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from stembench.endpoints.requests import ShardRequest

__all__ = ["FinishedImages"]


class FinishedImages:
    """Per shard, the entries of the images its stopped copies finished."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, dict[str, Any]]] = {}  # shard id -> image id -> entry

    def keep(self, request: ShardRequest, result: dict[str, Any]) -> None:
        """Keep the finished images of ``result``, a stopped copy of ``request`` (or of its rest).

        Parameters
        ----------
        request : ShardRequest
            The whole shard.
        result : dict
            The copy's result (its ``images`` are the finished ones).
        """
        wanted = set(request.image_ids)
        for entry in result.get("images") or ():
            if entry.get("image_id") in wanted:
                self.entries.setdefault(request.shard_id, {})[entry["image_id"]] = entry

    def rest(self, request: ShardRequest) -> ShardRequest:
        """``request`` with only the images not finished yet (itself when none was).

        Parameters
        ----------
        request : ShardRequest
            The whole shard.
        """
        done = self.entries.get(request.shard_id, {})
        left = tuple(image_id for image_id in request.image_ids if image_id not in done)
        return replace(request, image_ids=left) if done and left else request

    def merged(self, request: ShardRequest, result: dict[str, Any]) -> dict[str, Any]:
        """``result`` (of :meth:`rest`) with the kept images, as the whole shard's result.

        The kept images are given up here (the shard ends with this result).

        Parameters
        ----------
        request : ShardRequest
            The whole shard.
        result : dict
            The result of the copy sent with the images not finished before.
        """
        done = self.entries.pop(request.shard_id, {})
        if not done:
            return result
        by_id = done | {entry.get("image_id"): entry for entry in result.get("images") or ()}
        return {**result, "shard_id": request.shard_id,
                "images": [by_id[i] for i in request.image_ids if i in by_id]}
