"""``stembench submit``: put a result computed elsewhere on a service's leaderboard.

The results file of a finished ``stembench evaluate`` run is compressed (gzip), split into
parts, and uploaded with a Globus Auth bearer token (``STEMBENCH_TOKEN``) together with a
model card. The service checks that the result covers every image of the dataset version
and was made on its exact content (by hash), re-scores the coordinates with its own scorer,
and answers with the entry's URL. Uploads are idempotent: parts the service already holds
are not sent again, and a retried upload answers the same entry.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from stembench.errors import InputError, StembenchError

__all__ = ["SubmitOutcome", "pack_results", "submit_command", "submit_results"]

TOKEN_ENV = "STEMBENCH_TOKEN"
DEFAULT_SERVICE = "http://127.0.0.1:8000"
_FINAL = ("done", "failed", "cancelled")


@dataclass(frozen=True)
class SubmitOutcome:
    """What an upload did: the entry, its page, sizes and timings (seconds)."""

    entry: dict[str, Any]
    url: str
    duplicate: bool
    compressed_bytes: int
    parts_sent: int
    upload_s: float
    scoring_s: float | None


def pack_results(path: Path, *, model: str | None = None) -> bytes:
    """The finished shards of one model in a results file, as gzip-compressed JSON lines.

    Raises
    ------
    InputError
        No such file, no finished shard, several models and ``model`` not naming one, or
        scores made with other scoring options than the benchmark's.
    """
    from stembench.client.results_file import ResultsFile
    from stembench.client.results_lock import check_results_path
    from stembench.endpoints.shard_scoring import check_benchmark_scoring

    if not path.is_file():
        raise InputError(f"results file {path}: no such file")
    check_results_path(path)  # a CSV or someone else's file: one line, not a warning per line
    shards = ResultsFile(path).current_shards()
    names = sorted({str((s.get("model") or {}).get("name")) for s in shards})
    if model is not None:
        shards = [s for s in shards if (s.get("model") or {}).get("name") == model]
    elif len(names) > 1:
        raise InputError(f"results file {path} holds {len(names)} models ({', '.join(names)}); "
                         "choose one with --model")
    if not shards:
        raise InputError(f"results file {path} holds no finished shard"
                         + (f" of model {model!r} (models: {', '.join(names)})" if model else ""))
    check_benchmark_scoring(shards)  # the service refuses others: say so before uploading
    lines = "".join(json.dumps(s, separators=(",", ":")) + "\n" for s in shards)
    return gzip.compress(lines.encode(), compresslevel=6, mtime=0)


def _check(answer: Any, what: str) -> Any:
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text[:500]
        raise InputError(f"{what}: the service answered {answer.status_code}: {detail}")
    return answer.json()


def submit_results(results: Path, card_path: Path, *, service: str, token: str,
                   model: str | None = None, preset: str = "standard", wait_s: float = 600.0,
                   timeout_s: float = 120.0) -> SubmitOutcome:
    """Upload a results file with its model card; wait (up to ``wait_s``) for its scores.

    Parts are as large as the service accepts (its ``/api/health`` says), and the whole
    upload is checked against its size limit before anything is sent.

    Parameters
    ----------
    results : pathlib.Path
        The results file (JSON lines).
    card_path : pathlib.Path
        The model card (YAML or JSON).
    service : str
        Base URL of the stembench service.
    token : str
        Bearer token for the service.
    model : str, optional
        Which model's shards to send, where the file holds several; default the only one.
    preset : str, optional
        The dataset preset the results are for; default ``"standard"``.
    wait_s : float, optional
        Seconds to wait for the scores; default 600.
    timeout_s : float, optional
        Seconds one HTTP request may take; default 120.

    Raises
    ------
    InputError
        A bad card or results file, or the service's refusal with its reason.
    """
    import requests

    from stembench.model_cards import load_card

    card = load_card(card_path)
    data = pack_results(results, model=model)
    digest = hashlib.sha256(data).hexdigest()
    base = service.rstrip("/") + "/api/uploads/" + digest
    auth = {"Authorization": f"Bearer {token}"}
    start = time.perf_counter()
    try:
        limits = _check(requests.get(service.rstrip("/") + "/api/health", timeout=timeout_s),
                        "asking the service for its limits")
        if len(data) > limits["max_upload_bytes"]:
            raise InputError(f"{results}: {len(data)} bytes compressed, over the service's "
                             f"upload limit of {limits['max_upload_bytes']} bytes")
        part_bytes = int(limits["upload_part_bytes"])
        chunks = [data[i:i + part_bytes] for i in range(0, len(data), part_bytes)]
        held = {p["index"]: p["sha256"] for p in _check(requests.get(
            base, headers=auth, timeout=timeout_s), "listing uploaded parts")}
        sent = 0
        for index, chunk in enumerate(chunks):
            if held.get(index) == hashlib.sha256(chunk).hexdigest():
                continue
            _check(requests.put(f"{base}/parts/{index}", data=chunk, timeout=timeout_s,
                                headers={**auth, "Content-Type": "application/octet-stream"}),
                   f"uploading part {index + 1} of {len(chunks)}")
            sent += 1
        answer = _check(requests.post(f"{base}/complete", headers=auth, timeout=timeout_s,
                                      json={"parts": len(chunks), "model_card": card,
                                            "dataset_preset": preset}), "completing the upload")
        upload_s = time.perf_counter() - start
        entry, scoring_s = answer["entry"], None
        deadline = time.monotonic() + wait_s
        while entry["status"] not in _FINAL and time.monotonic() < deadline:
            time.sleep(1.0)
            entry = _check(requests.get(f"{service.rstrip('/')}/api/jobs/{entry['id']}",
                                        headers=auth, timeout=timeout_s), "following the entry")
        if entry["status"] in _FINAL:
            scoring_s = time.perf_counter() - start - upload_s
    except requests.RequestException as exc:
        raise InputError(f"cannot reach the service at {service}: {exc}") from exc
    return SubmitOutcome(entry, service.rstrip("/") + answer["url"], bool(answer["duplicate"]),
                         len(data), sent, upload_s, scoring_s)


def submit_command(
    results: Annotated[Path, typer.Argument(help="Results file of a finished evaluation.")],
    model_card: Annotated[Path, typer.Option("--model-card", help="Model card (YAML).")],
    service: Annotated[str, typer.Option(help="Service URL.")] = DEFAULT_SERVICE,
    model: Annotated[str | None, typer.Option(
        help="Model to submit when the results file holds several.")] = None,
    preset: Annotated[str, typer.Option(help="Dataset preset the results are for.")] = "standard",
    wait: Annotated[float, typer.Option(help="Seconds to wait for the service's scores.")] = 600,
) -> None:
    """Upload a finished evaluation's coordinates with a model card; the service re-scores
    them and answers with the entry's URL. Needs a Globus Auth token in STEMBENCH_TOKEN."""
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise InputError(f"set {TOKEN_ENV} to a Globus Auth access token for the service")
    try:
        outcome = submit_results(results, model_card, service=service, token=token,
                                 model=model, preset=preset, wait_s=wait)
    except StembenchError as exc:
        typer.echo(f"stembench submit: {exc}", err=True)
        raise typer.Exit(2) from exc
    entry = outcome.entry
    typer.echo(f"uploaded {outcome.compressed_bytes} bytes compressed ({outcome.parts_sent} "
               f"part(s) sent) in {outcome.upload_s:.1f} s"
               + (" (already submitted: same entry)" if outcome.duplicate else ""))
    if entry["status"] == "done":
        typer.echo(f"re-scored by the service: {entry['n_done']} images, "
                   f"{entry.get('n_failed') or 0} failed")
    elif entry["status"] in _FINAL:
        typer.echo(f"the service refused the result: {entry.get('error')}", err=True)
        raise typer.Exit(2)
    else:
        typer.echo(f"still being scored ({entry['status']}); follow it at the URL below")
    typer.echo(outcome.url)
