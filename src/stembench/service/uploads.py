"""Uploading a result computed elsewhere: parts, then completion, then re-scoring.

A client gzip-compresses its results file, splits it into parts of at most the service's
part size, and sends each with ``PUT /api/uploads/{sha256}/parts/{index}`` (``sha256`` of
the whole compressed file). ``POST /api/uploads/{sha256}/complete`` with the model card
joins the parts, checks the hash, the size limit, the model card, the dataset content hash,
the scoring options (the benchmark's only: entries must compare) and that every image of the
dataset version is covered (saying which are missing), and queues the entry; the worker then
re-scores it from its coordinates. Parts count against the upload's size limit and the
user's quotas (``upload_quota_bytes``, ``upload_quota_parts``) as they arrive, through a
running tally (:mod:`stembench.service.upload_parts`); a refused upload's parts are deleted,
and so are those of an upload left unfinished for ``upload_abandon_s`` (swept at start and
on a timer). Model cards may not take a registered model's name. Everything is idempotent: a
part sent twice is stored once, and completing the same content with the same card again (by
the same owner) answers the same entry.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi import Path as PathParam
from sqlalchemy.orm import Session

from stembench.atomic import atomic_write_bytes
from stembench.endpoints.shard_scoring import check_benchmark_scoring
from stembench.errors import InputError
from stembench.service import store
from stembench.service.api import _AUTH_ERRORS, DB, Caller, job_out, registered_models
from stembench.service.auth import Identity
from stembench.service.entries import (
    INFLATION,
    held_dataset,
    model_identity,
    read_upload,
    upload_file,
)
from stembench.service.rescore import check_coverage, check_dataset, image_entries
from stembench.service.schemas import ErrorOut, UploadIn, UploadOut, UploadPartOut
from stembench.service.settings import ServiceSettings
from stembench.service.upload_parts import (
    UploadLimitError,
    drop_upload,
    owner_lock,
    store_part,
    upload_folder,
)

__all__ = ["OWNER_UPLOADS", "UPLOAD_THREADS", "UploadGate", "router"]

T = TypeVar("T")
#: Threads that store parts and complete uploads, apart from the request threads, and the
#: upload requests one owner may have in flight at once.
UPLOAD_THREADS = 2
OWNER_UPLOADS = 2

router = APIRouter(prefix="/api/uploads")
Digest = Annotated[str, PathParam(pattern=r"^[0-9a-f]{64}$",
                                  description="SHA-256 of the whole compressed upload")]
Index = Annotated[int, PathParam(ge=0, lt=10_000, description="Part number, from 0")]
_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut}, 413: {"model": ErrorOut}, 422: {"model": ErrorOut},
    **_AUTH_ERRORS}


def _store_part(settings: ServiceSettings, owner: str, digest: str, index: int,
                data: bytes) -> UploadPartOut:
    """Keep one part if the upload and the owner's unfinished uploads stay within limits."""
    try:
        store_part(settings, owner, digest, index, data)
    except UploadLimitError as exc:
        raise HTTPException(413, str(exc)) from exc
    return UploadPartOut(index=index, size=len(data), sha256=hashlib.sha256(data).hexdigest())


@router.put("/{digest}/parts/{index}", response_model=UploadPartOut, responses=_ERRORS)
async def put_part(digest: Digest, index: Index, caller: Caller,
                   request: Request) -> UploadPartOut:
    """Store one part of an upload (raw bytes; the body limit is the service's part size).

    Parts count against the upload's size limit and the caller's quotas (bytes and parts)
    as they arrive, and against the caller's upload requests in flight (429 beyond); an
    upload that would pass its limit is deleted, one that receives no part for
    ``upload_abandon_s`` is deleted as abandoned.
    """
    gate: UploadGate = request.app.state.upload_gate
    async with gate.slot(caller.sub):  # before the body is read
        data = await request.body()
        if not data:
            raise HTTPException(422, f"part {index} is empty")
        return await gate.run(_store_part, request.app.state.settings, caller.sub, digest,
                              index, data)


@router.get("/{digest}", response_model=list[UploadPartOut], responses=_AUTH_ERRORS)
def list_parts(digest: Digest, caller: Caller, request: Request) -> list[UploadPartOut]:
    """Parts of an upload stored so far (to resume an interrupted upload)."""
    folder = upload_folder(request.app.state.settings, caller.sub, digest)
    parts = sorted(folder.glob("*.part")) if folder.is_dir() else []
    return [UploadPartOut(index=int(p.name.split(".")[0]), size=p.stat().st_size,
                          sha256=hashlib.sha256(p.read_bytes()).hexdigest()) for p in parts]


def _joined(folder: Path, digest: str, parts: int, limit: int) -> bytes:
    missing = [i for i in range(parts) if not (folder / f"{i:05d}.part").is_file()]
    if missing:
        shown = ", ".join(map(str, missing[:20]))
        raise HTTPException(409, f"upload {digest[:12]}: part(s) {shown} of {parts} not received; "
                                 "send them with PUT .../parts/{index} first")
    sizes = [(folder / f"{i:05d}.part").stat().st_size for i in range(parts)]
    if sum(sizes) > limit:
        raise HTTPException(413, f"the upload is {sum(sizes)} bytes compressed, over this "
                                 f"service's limit of {limit} bytes")
    data = b"".join((folder / f"{i:05d}.part").read_bytes() for i in range(parts))
    actual = hashlib.sha256(data).hexdigest()
    if actual != digest:
        raise HTTPException(422, f"the {parts} part(s) joined have SHA-256 {actual}, expected "
                                 f"{digest}: a part is wrong or out of order; send them again")
    return data


def _check_name(name: str) -> None:
    """Refuse an entry named like a registered model (built-in or plug-in), in any case."""
    taken = {model.name.lower() for model in registered_models() or []}
    if name.lower() in taken:
        raise InputError(f"model card name {name!r} is the name of a model this service "
                         "evaluates itself; name your entry differently")


def _check(settings: ServiceSettings, data: bytes, body: UploadIn) -> tuple[dict[str, Any],
                                                                            Any]:
    """The validated card and the dataset the upload is for; HTTP 422 with the reason."""
    from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
    from stembench.model_cards import validate_card

    try:
        card = validate_card(body.model_card)
        _check_name(str(card["name"]))
        shards = read_upload(data, max_bytes=settings.max_upload_bytes * INFLATION)
        identity = model_identity(shards)
        claimed, reported = card["weights_sha256"], identity.get("weights_sha256")
        if claimed and reported and claimed != reported:
            raise InputError(f"the model card names weights {claimed} but the results were "
                             f"produced with weights {reported}")
        name = (shards[0].get("dataset") or {}).get("name") or DATASET_NAME
        held = held_dataset(settings, str(name), body.dataset_preset,
                            body.dataset_version or str(DATASET_VERSION))
        check_dataset(shards, held)
        check_benchmark_scoring(shards)
        entries = image_entries(shards)
        check_coverage(entries, held)
        bare = sorted(i for i, (e, _) in entries.items()
                      if not e.get("error") and e.get("coordinates") is None)
        if bare:
            raise InputError(f"{len(bare)} image(s) have scores but no coordinates (e.g. "
                             f"{', '.join(bare[:5])}); the service scores coordinates only: "
                             "evaluate with coordinates kept")
    except InputError as exc:
        raise HTTPException(422, str(exc)) from exc
    return card, held


@router.post("/{digest}/complete", response_model=UploadOut, status_code=202,
             responses={200: {"model": UploadOut, "description": "The same upload again"},
                        **_ERRORS})
async def complete(digest: Digest, body: UploadIn, caller: Caller, db: DB, request: Request,
                   response: Response) -> UploadOut:
    """Join the parts, check them, and queue the entry for re-scoring (202; 200 if a retry)."""
    gate: UploadGate = request.app.state.upload_gate
    async with gate.slot(caller.sub):
        return await gate.run(_complete, request.app.state.settings, digest, body, caller, db,
                              response)


def _complete(settings: ServiceSettings, digest: str, body: UploadIn, caller: Identity,
              db: Session, response: Response) -> UploadOut:
    folder = upload_folder(settings, caller.sub, digest)
    try:
        with owner_lock(settings, caller.sub):  # a second completion may be dropping them
            data = _joined(folder, digest, body.parts, settings.max_upload_bytes)
        card, held = _check(settings, data, body)
    except HTTPException as exc:
        if exc.status_code != 409:  # refused, not incomplete: its parts are deleted
            drop_upload(settings, caller.sub, digest)
        raise
    target = upload_file(settings, store.upload_key(caller.sub, digest, card))
    if not target.is_file():  # kept before the job exists: the worker may claim it at once
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, data)
    job, created = store.create_upload(
        db, owner=caller.sub, owner_name=caller.username, content_sha256=digest, card=card,
        dataset_name=held.name, dataset_preset=body.dataset_preset, dataset_version=held.version)
    if not created:
        response.status_code = 200
        if job.status == "done":  # scored already: the copy just kept is not needed
            target.unlink(missing_ok=True)
    drop_upload(settings, caller.sub, digest)
    return UploadOut(entry=job_out(job), url=f"/entries/{job.id}", duplicate=not created)


class UploadGate:
    """Upload work runs on threads of its own, never the threads public reading uses, and
    one owner may have only a few upload requests in flight (429 beyond), so that no
    signed-in user can stall the service by uploading.

    Parameters
    ----------
    threads : int
        Threads storing parts and completing uploads, all owners together.
    per_owner : int
        Upload requests (parts, completions) one owner may have in flight.
    """

    def __init__(self, threads: int = UPLOAD_THREADS, per_owner: int = OWNER_UPLOADS) -> None:
        self.threads, self.per_owner = threads, per_owner
        self._out: dict[str, int] = {}
        self._limiter: anyio.CapacityLimiter | None = None

    @asynccontextmanager
    async def slot(self, owner: str) -> AsyncIterator[None]:
        """Hold one of ``owner``'s upload slots (on the event loop; 429 when none is free)."""
        held = self._out.get(owner, 0)
        if held >= self.per_owner:
            raise HTTPException(429, f"you have {held} upload requests in flight already (at "
                                     f"most {self.per_owner}); wait for them to finish")
        self._out[owner] = held + 1
        try:
            yield
        finally:
            self._out[owner] -= 1
            if not self._out[owner]:
                del self._out[owner]

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` on an upload thread, the request waiting on the event loop."""
        if self._limiter is None:  # made in the event loop it serves
            self._limiter = anyio.CapacityLimiter(self.threads)
        return await anyio.to_thread.run_sync(function, *args, limiter=self._limiter)
