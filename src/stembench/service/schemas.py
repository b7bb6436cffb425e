"""Request and response bodies of the HTTP API (pydantic models, shown in the OpenAPI schema)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

__all__ = [
    "MAX_CARD_BYTES",
    "CutoffOut",
    "DatasetOut",
    "ErrorOut",
    "JobOut",
    "LeaderboardOut",
    "LeaderboardRow",
    "ModelOut",
    "ScoreOut",
    "ScoresOut",
    "SubmitIn",
    "SubmitOut",
    "UploadIn",
    "UploadOut",
    "UploadPartOut",
]

#: Largest model card an upload may carry (bytes of its JSON); it is stored with the entry.
MAX_CARD_BYTES = 16 * 1024
Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
OptionValue = str | int | float | bool | None


class ErrorOut(BaseModel):
    """Every error: a readable ``detail`` and, for auth errors, the RFC 6750 code."""

    detail: str
    error: str | None = None


class DatasetOut(BaseModel):
    """A dataset preset the service can evaluate on."""

    name: str
    version: str
    preset: str
    image_shape: list[int]
    seeds: int


class ModelOut(BaseModel):
    """A registered model (the service evaluates registered models only)."""

    name: str
    description: str
    framework: str
    available: bool


class SubmitIn(BaseModel):
    """An evaluation request."""

    model_config = ConfigDict(extra="forbid")

    model: Name = Field(description="Registered model name (see GET /api/models).")
    options: dict[Annotated[str, StringConstraints(max_length=64)], OptionValue] = Field(
        default_factory=dict, max_length=32,
        description="Model constructor options (flat JSON scalars).")
    dataset_name: Name = "atom-locating-benchmark"
    dataset_preset: Name = "standard"
    dataset_version: Name | None = Field(
        default=None, description="Dataset version; default: the version this service builds.")
    endpoint_id: str | None = Field(
        default=None, description="Globus Compute endpoint UUID (services running on Globus).")
    endpoint_options: dict[Annotated[str, StringConstraints(max_length=64)], OptionValue] = Field(
        default_factory=dict, max_length=16,
        description="Per-task options of the endpoint's user template (e.g. account, "
                    "walltime), checked at submission against the schema the endpoint "
                    "publishes (services running on Globus).")

    @field_validator("endpoint_id")
    @classmethod
    def _uuid(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return str(uuid.UUID(value))
        except ValueError as exc:
            raise ValueError(f"endpoint_id must be a UUID, got {value[:80]!r}") from exc

    @field_validator("options", "endpoint_options")
    @classmethod
    def _finite(cls, value: dict[str, OptionValue]) -> dict[str, OptionValue]:
        for key, item in value.items():
            if isinstance(item, float) and not math.isfinite(item):
                raise ValueError(f"option {key!r} must be finite")
            if isinstance(item, str) and len(item) > 256:
                raise ValueError(f"option {key!r} is longer than 256 characters")
        return value


class JobOut(BaseModel):
    """A job as its owner sees it."""

    id: str
    status: str
    model: str
    options: dict[str, Any]
    dataset_name: str
    dataset_preset: str
    dataset_version: str
    endpoint_id: str | None
    endpoint_options: dict[str, Any] = Field(default_factory=dict)
    cancel_requested: bool
    n_images: int | None
    n_done: int
    error: str | None
    weights_sha256: str | None
    model_version: str | None
    duplicate_of: str | None
    created_at: datetime
    finished_at: datetime | None
    source: str = Field(description="worker (run by this service) or upload (results uploaded "
                                    "by their owner, re-scored here)")
    n_failed: int | None = Field(default=None, description="Images the model failed on "
                                                            "(scored as finding nothing)")


class SubmitOut(BaseModel):
    """Answer to a submission: 201 with a new job, or 200 with ``duplicate`` and the live one."""

    job: JobOut
    duplicate: bool


class ScoreOut(BaseModel):
    """The stored score of one image, with its provenance."""

    image_id: str
    group: str
    series: str
    step: int
    axis_value: float | None
    seed: int
    recall: float | None
    precision: float | None
    f1: float | None
    rms_angstrom: float | None
    tp: int
    fp: int
    fn: int
    model: str
    model_version: str
    weights_sha256: str
    dataset_name: str | None
    dataset_version: str | None
    dataset_manifest_sha256: str | None
    host: str | None
    device: str | None
    error: str | None = Field(default=None, description="Why the model failed on this image "
                                                        "(then scored as finding nothing)")


class ScoresOut(BaseModel):
    """A page of per-image scores."""

    job_id: str
    total: int
    offset: int
    scores: list[ScoreOut]


class CutoffOut(BaseModel):
    """One cutoff (see :class:`stembench.client.analysis.Cutoff`)."""

    model_config = ConfigDict(extra="allow")

    model: str
    group: str
    axis: str
    method: str
    status: str
    value: float | None
    criterion: str | None
    tested_range: list[float]
    interval: list[float] | None


class LeaderboardRow(BaseModel):
    """One model on one data group."""

    rank: int
    job_id: str
    model: str
    model_version: str
    weights_sha256: str
    weights_origin: str = Field(description="By the weights' SHA-256: published weights, "
                                            "trained here, no weights, or other")
    n_images: int = Field(description="Images of the group this entry covers")
    n_failed: int = Field(description="Of those, images the model failed on (F1 counted as 0)")
    recall: float | None
    precision: float | None
    f1: float | None = Field(description="Mean F1 over every covered image, failures as 0")
    rms_angstrom: float | None
    cutoffs: dict[str, CutoffOut]
    training_overlap: str = Field(description="Model card: training data overlaps the "
                                              "benchmark (yes, no, unknown)")
    card: dict[str, Any] | None = Field(description="The entry's model card")
    provenance: dict[str, str] = Field(description="Source, dataset, its content hash, scorer "
                                                   "version, where and when it ran")


class LeaderboardOut(BaseModel):
    """Leaderboard of one data group, ranked by one axis' cutoff or by mean F1."""

    group: str
    axis: str | None
    groups: list[str]
    axes: list[str]
    rows: list[LeaderboardRow]


class UploadIn(BaseModel):
    """Completes an upload: the parts (already sent) make a gzip-compressed results file."""

    model_config = ConfigDict(extra="forbid")

    parts: int = Field(ge=1, le=10_000, description="Number of parts sent (0 .. parts-1).")
    model_card: dict[str, Any] = Field(description="The model card (see the model-card schema; "
                                                   f"at most {MAX_CARD_BYTES} bytes as JSON).")
    dataset_preset: Name = "standard"
    dataset_version: Name | None = Field(
        default=None, description="Dataset version; default: the version this service scores.")

    @field_validator("model_card")
    @classmethod
    def _small_card(cls, card: dict[str, Any]) -> dict[str, Any]:
        size = len(json.dumps(card, default=str).encode())
        if size > MAX_CARD_BYTES:
            raise ValueError(f"the model card is {size} bytes as JSON, over the limit of "
                             f"{MAX_CARD_BYTES}")
        return card


class UploadPartOut(BaseModel):
    """A stored part of an upload."""

    index: int
    size: int
    sha256: str


class UploadOut(BaseModel):
    """Answer to a completed upload: the entry (queued for re-scoring) and its page."""

    entry: JobOut
    url: str
    duplicate: bool
