"""Typed, validated messages exchanged between the client and an endpoint.

Everything that travels is plain JSON (dicts, lists, str, float, int, bool, None):
no pickled objects cross versions. The objects here validate on construction and
convert to and from JSON-safe dicts.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from stembench._version import __version__
from stembench.endpoints.models.deadline import DEFAULT_IMAGE_TIMEOUT_S, check_timeout
from stembench.errors import InputError
from stembench.schemas import check_message

__all__ = [
    "FEATURES",
    "PROTOCOL_VERSION",
    "RESULT_LIMIT_BYTES",
    "DatasetRef",
    "ModelSpec",
    "ScoringOptions",
    "ShardRequest",
    "check_compatible",
]

PROTOCOL_VERSION = 1
#: Request fields this stembench's endpoint understands that older 0.1 endpoints refuse (their
#: requests allow no unknown field). :func:`~stembench.endpoints.shard.describe_dataset` lists
#: them in its answer, so a client sends them only to an endpoint that says it knows them.
FEATURES = ("not_after_unix",)
#: Globus Compute rejects results over 10 MiB; keep a margin for the serializer's base64.
RESULT_LIMIT_BYTES = 7 * 1024 * 1024

DatasetSource = Literal["cache", "path", "foundry"]


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise InputError(message)


@dataclass(frozen=True)
class DatasetRef:
    """Where a dataset lives on the machine that evaluates it.

    Attributes
    ----------
    name : str
        Dataset name, e.g. ``"atom-locating-benchmark"``.
    preset : str
        Build preset of a generated dataset (``"mini"`` or ``"standard"``).
    version : str or None
        Dataset version; ``None`` means the version this stembench builds.
    source : {"cache", "path", "foundry"}
        ``"cache"``: the endpoint's local cache (built or downloaded on first use);
        ``"path"``: an HDF5 file at ``path`` on the endpoint; ``"foundry"``: fetched into
        the cache from Foundry/MDF.
    path : str or None
        File path on the endpoint, required when ``source == "path"``.
    cache_dir : str or None
        Cache directory on the endpoint; ``None`` uses the endpoint's default.
    """

    name: str = "atom-locating-benchmark"
    preset: str = "standard"
    version: str | None = None
    source: DatasetSource = "cache"
    path: str | None = None
    cache_dir: str | None = None

    def __post_init__(self) -> None:
        _require(bool(self.name), "dataset reference: 'name' must not be empty")
        _require(
            self.source in ("cache", "path", "foundry"),
            f"dataset reference: 'source' must be cache, path or foundry, got {self.source!r}",
        )
        _require(
            self.source != "path" or bool(self.path),
            "dataset reference: source 'path' needs a 'path' on the endpoint",
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetRef:
        """Build from a JSON dict, rejecting unknown fields."""
        return _from_dict(cls, data, "dataset reference")


@dataclass(frozen=True)
class ModelSpec:
    """A model reference resolved on the endpoint by the model registry.

    Attributes
    ----------
    spec : str
        Registry name, entry-point name, a file path on the endpoint, or ``module:function``.
    options : dict
        Keyword options passed to the model's constructor (JSON values only).
    """

    spec: str
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require(bool(self.spec), "model spec: 'spec' must not be empty")
        try:
            json.dumps(self.options)
        except (TypeError, ValueError) as exc:
            raise InputError(f"model spec {self.spec!r}: options must be JSON values") from exc

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        """Build from a JSON dict, rejecting unknown fields."""
        return _from_dict(cls, data, "model spec")


@dataclass(frozen=True)
class ScoringOptions:
    """Options of :func:`stembench.scoring.score_image` (radius in A, border in px)."""

    radius_angstrom: float = 0.5
    border_px: float = 6.0
    mode: Literal["one-to-one", "legacy"] = "one-to-one"

    def __post_init__(self) -> None:
        _require(self.radius_angstrom > 0, "scoring: radius_angstrom must be positive")
        _require(self.border_px >= 0, "scoring: border_px must be >= 0")
        _require(self.mode in ("one-to-one", "legacy"), f"scoring: unknown mode {self.mode!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoringOptions:
        """Build from a JSON dict, rejecting unknown fields."""
        return _from_dict(cls, data, "scoring options")


@dataclass(frozen=True)
class ShardRequest:
    """One unit of work: a model evaluated on some images of one dataset.

    ``image_timeout_s`` is the deadline of one model call (``None``: none); it is not part
    of the shard's identity, so a run resumed with another deadline skips finished shards.
    ``not_after_unix`` (seconds since the epoch, the sender's wall clock; ``None``: never)
    is when the sender stops waiting for this copy's result: set at each submission, not
    part of the shard's identity either (see :mod:`stembench.endpoints.expiry`).
    ``identity`` is what the client expects the results to belong to (see
    :func:`stembench.identity.shard_identity`): part of the shard id, and checked by the
    endpoint before it evaluates anything; empty means no check.
    """

    dataset: DatasetRef
    model: ModelSpec
    image_ids: tuple[str, ...]
    scoring: ScoringOptions = field(default_factory=ScoringOptions)
    client_version: str = __version__
    protocol: int = PROTOCOL_VERSION
    max_result_bytes: int = RESULT_LIMIT_BYTES
    return_coordinates: bool = True
    image_timeout_s: float | None = DEFAULT_IMAGE_TIMEOUT_S
    identity: dict[str, Any] = field(default_factory=dict)
    not_after_unix: float | None = None

    def __post_init__(self) -> None:
        _require(len(self.image_ids) > 0, "shard request: 'image_ids' must not be empty")
        _require(self.max_result_bytes > 1024, "shard request: max_result_bytes too small")
        check_timeout(self.image_timeout_s, option="shard request: image_timeout_s")
        when = self.not_after_unix
        _require(when is None or (isinstance(when, int | float) and not isinstance(when, bool)
                                  and math.isfinite(when)),
                 f"shard request: 'not_after_unix' must be a time in seconds, got {when!r}")
        _require(isinstance(self.identity, dict),
                 f"shard request: 'identity' must be a dict, got {type(self.identity).__name__}")

    @property
    def shard_id(self) -> str:
        """A content hash: the same work always has the same id (used to resume).

        It covers the dataset reference, model spec, image ids, scoring options and the
        expected identity (dataset content, scorer version, model identity).
        """
        payload = json.dumps(
            {
                "dataset": asdict(self.dataset),
                "model": asdict(self.model),
                "ids": list(self.image_ids),
                "scoring": asdict(self.scoring),
                "identity": self.identity,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the request; without ``not_after_unix`` when it is ``None``, so
        that an endpoint older than the field (:data:`FEATURES`) accepts the request."""
        data = asdict(self)
        data["image_ids"] = list(self.image_ids)
        if data["not_after_unix"] is None:
            del data["not_after_unix"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardRequest:
        """Validate and build a request from a JSON dict."""
        check_message("shard-request", data, what="shard request")
        fields = dict(data)
        try:
            fields["dataset"] = DatasetRef.from_dict(fields["dataset"])
            fields["model"] = ModelSpec.from_dict(fields["model"])
            fields["scoring"] = ScoringOptions.from_dict(fields.get("scoring", {}))
            fields["image_ids"] = tuple(str(i) for i in fields["image_ids"])
        except KeyError as exc:
            raise InputError(f"shard request: missing field {exc.args[0]!r}") from exc
        return _from_dict(cls, fields, "shard request")


def _from_dict(cls: Any, data: dict[str, Any], what: str) -> Any:
    if not isinstance(data, dict):
        raise InputError(f"{what} must be a dict, got {type(data).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InputError(f"{what}: unknown field(s) {unknown}; expected some of {sorted(known)}")
    try:
        return cls(**data)
    except TypeError as exc:
        raise InputError(f"{what}: {exc}") from exc


def check_compatible(client_version: str, endpoint_version: str = __version__) -> None:
    """Raise :class:`InputError` unless the two stembench versions can work together.

    Versions are compatible when their major versions agree and, for 0.x releases,
    their minor versions agree too (the scorer and result layout may change between
    0.x minors).
    """

    def parts(version: str) -> tuple[int, int]:
        try:
            major, minor = version.split(".")[:2]
            return int(major), int(minor)
        except ValueError as exc:
            raise InputError(f"unreadable stembench version {version!r}") from exc

    client, endpoint = parts(client_version), parts(endpoint_version)
    same = client[0] == endpoint[0] and (client[0] > 0 or client[1] == endpoint[1])
    if not same:
        raise InputError(
            f"stembench {client_version} on the client cannot use stembench "
            f"{endpoint_version} on the endpoint: install a matching version on both sides"
        )
