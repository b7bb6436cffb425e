"""Test data for the foundry tests: a tiny stembench dataset and recorded service answers.

Imported by name (``conftest.py`` puts this folder on ``sys.path``).

Where the recorded shapes come from (read in the installed packages, not guessed):

- MDF v2 API base URLs per service: ``mdf/core/backend_client.py:33-38`` (``_V2_API_URLS``);
  the default service is mdf-cli 0.3.0's ``DEFAULT_SERVICE = "staging"``
  (``mdf/core/config.py:16``). The staging URL is an AWS API Gateway stage, whose Lambda
  proxy answers may arrive as ``{"statusCode", "headers", "body": "<json>"}`` envelopes,
  which ``BackendClient._request`` unwraps (``backend_client.py:708-720``).
- MDF v2 API routes: ``mdf.core.backend_client.BackendClient``
  (routes and query parameters of ``search``, ``get_card``, ``status``, ``submit``,
  ``auth_check``), and the fields ``mdf-cli`` reads back: ``results[].source_id/version/
  title/doi`` (``mdf/cli/commands/search.py``), ``card.source_id/version/title/
  data_sources/download_url`` (``mdf.core.agent.MDFAgent._prepare_clone``), ``source_id`` and
  ``version`` of a submit answer (``mdf/cli/commands/publish.py``), ``submission.status/
  version/dataset_doi`` of a status answer (``mdf/cli/commands/_shared.py``),
  ``is_submitter`` of ``/auth/check`` (``MDFAgent.publish``).
- Globus Search (what foundry-ml 1.2.2 queries): the ``GSearchResult`` envelope of
  globus-sdk's registered test response for ``SearchClient.search``
  (``globus_sdk/_testing/data/search/search.py``), whose ``gmeta[].entries[].content`` is
  what ``foundry.mdf_client.MDFClient.search`` returns; the content is
  :func:`v2_index_record`, built from the payload mdf-cli itself builds.
- File locations: MDF v2 keeps a version's files under ``/mdf_open/<source_id>/<version>/``
  (``mdf/core/agent.py:985-990``), which a card's ``data_sources`` name; foundry-ml 1.2.2
  lists ``/foundry/<source_id>/`` with Globus Transfer ``operation_ls``
  (``foundry/foundry_cache.py:110``), which for a v2 record answers Transfer's 404
  ``NotFound`` (the shape of globus-sdk's registered ``operation_stat`` 404,
  ``globus_sdk/_testing/data/transfer/operation_stat.py:28-38``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from stembench.datamodel import BenchmarkImage
from stembench.dataset_publish.mdf.foundry_arrays import write_foundry_arrays
from stembench.dataset_publish.simulate.build import DATASET_NAME, DATASET_VERSION
from stembench.dataset_publish.storage.stembench_layout import DatasetWriter

PIXEL_SIZE = 0.2  # A/px
SOURCE_ID = "atom_locating_benchmark_mini"
MDF_VERSION = "1.1"
DOI = "10.18126/test-0001"
APIS = {"prod": "https://api.materialsdatafacility.org",
        "staging": "https://3xicgt0g7l.execute-api.us-east-1.amazonaws.com/staging",
        "dev": "https://api-dev.materialsdatafacility.org"}
API = APIS["staging"]  # mdf-cli 0.3.0's default service
NCSA = "82f1b5c6-6e9b-11e5-ba47-22000b92c6ec"
FOLDER = f"/mdf_open/{SOURCE_ID}/{MDF_VERSION}/"
FILES_URL = f"https://data.materialsdatafacility.org{FOLDER}"
GLOBUS_SEARCH_URL = ("https://search.api.globus.org/v1/index/"
                     "1a57bbe5-5272-477f-9d31-343b8258b7a5/search")


def _metadata(seed: int, **overrides: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "material": "SrTiO3[100]", "type": "simulated", "space_group": "Pm-3m",
        "probe_current_pA": 18.9, "peak_intensity_e": 250.0, "contrast": 0.8,
        "pixel_size_pm": PIXEL_SIZE * 100.0, "atoms_per_100px": 6.4, "resolution_pm": 128.0,
        "dose_e_per_A2": math.nan, "psnr_db": 20.5, "drift": 0.0, "flyback": 0.0,
        "pixel_size_angstrom": PIXEL_SIZE, "group": "SrTiO3-simulated", "series": "noise",
        "step": 1, "axis_value": 20.5, "seed": seed, "backend": "fast",
        "generator_version": "0.1.0", "source": "foundry-test",
    }
    meta.update(overrides)
    return meta


def make_image(image_id: str, seed: int, *, shape: tuple[int, int] = (16, 20),
               n_columns: int = 5, **overrides: Any) -> BenchmarkImage:
    """A deterministic random image with ``n_columns`` columns inside it."""
    rng = np.random.default_rng(seed)
    rows, cols = shape
    coords = np.column_stack([rng.uniform(0, cols - 1, n_columns),
                              rng.uniform(0, rows - 1, n_columns)])
    raw = rng.random(shape).astype(np.float32)
    image = (raw + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    meta = _metadata(seed, **overrides)
    types = ("Sr", "TiO", "O")
    meta["column_elements"] = tuple(("Sr", "Ti+O", "O")[i % 3] for i in range(n_columns))
    return BenchmarkImage(image_id=image_id, image=image, coords=coords, pixel_size=PIXEL_SIZE,
                          raw=raw, column_types=tuple(types[i % 3] for i in range(n_columns)),
                          metadata=meta)


def write_tiny(path: Path, *, version: str = DATASET_VERSION, arrays: bool = True,
               preset: str = "tiny") -> Path:
    """Write three images as the benchmark's name and version, its manifest and array file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with DatasetWriter(path, name=DATASET_NAME, version=version,
                       generator_params={"preset": preset}, overwrite=True) as writer:
        writer.add(make_image("sto-noise-1", 1))
        writer.add(make_image("sto-noise-2", 2, step=2))
        writer.add(make_image("ws2-ref-0", 3, material="WS2", group="WS2-simulated",
                              series="reference", step=0))
    if arrays:
        write_foundry_arrays(path)
    return path


def title(version: str = DATASET_VERSION, preset: str = "mini") -> str:
    return (f"{DATASET_NAME} {preset} {version}: atomic-resolution STEM images with exact "
            "atomic column positions")


def v2_search(*results: dict[str, Any]) -> dict[str, Any]:
    """An MDF v2 ``GET /search`` answer."""
    return {"success": True, "total": len(results), "results": list(results),
            "facets": {}}


def v2_result(*, source_id: str = SOURCE_ID, version: str = MDF_VERSION,
              title_text: str | None = None) -> dict[str, Any]:
    return {"source_id": source_id, "version": version, "title": title_text or title(),
            "authors": ["stembench developers"], "doi": DOI}


def v2_card(*, source_id: str = SOURCE_ID, version: str = MDF_VERSION,
            data_sources: list[str] | None = None) -> dict[str, Any]:
    """An MDF v2 ``GET /card/{source_id}`` answer."""
    return {"success": True, "card": {
        "source_id": source_id, "version": version, "title": title(), "doi": DOI,
        "status": "published", "download_url": None,
        "data_sources": data_sources or [f"globus://{NCSA}{FOLDER}"],
        "ml": {"data_format": "hdf5"}}}


def v2_index_record(payload: dict[str, Any], *, source_id: str = SOURCE_ID,
                    doi: str = DOI) -> dict[str, Any]:
    """The most an MDF v2 record could hold where foundry-ml 1.2.2 searches.

    foundry-ml searches MDF's legacy Globus Search index (``foundry/mdf_client.py:22,290``)
    and reads ``mdf.source_id``, ``dc`` and ``projects.foundry`` of a hit
    (``foundry/foundry.py:295-298``). A v2 submission is the payload mdf-cli builds
    (``mdf.core.submission.build_submission``): it carries ``dc`` as given
    (``mdf/models/config.py:257-258``) but never ``projects.foundry``, which mdf-cli drops
    on purpose, keeping other ``custom`` blocks under ``extensions``
    (``mdf/models/config.py:246-255``). This record is that payload's blocks, with the
    source id and DOI MDF assigns; no document shows v2 writing the legacy index at all.
    """
    dc = dict(payload["dc"])
    dc["identifier"] = {"identifier": doi, "identifierType": "DOI"}
    organizations = [payload["organization"]] if payload.get("organization") else []
    return {"mdf": {"source_id": source_id, "source_name": source_id, "version": MDF_VERSION,
                    "resource_type": "dataset", "organizations": organizations},
            "dc": dc, **{k: v for k, v in payload.items()
                         if k in ("extensions", "ml", "projects")}}


def globus_search(*records: dict[str, Any]) -> dict[str, Any]:
    """A Globus Search ``GSearchResult`` holding the records."""
    return {"@datatype": "GSearchResult", "@version": "2017-09-01", "count": len(records),
            "gmeta": [{"@datatype": "GMetaResult", "@version": "2019-08-27",
                       "entries": [{"content": r, "entry_id": None,
                                    "matched_principal_sets": []}],
                       "subject": r["mdf"]["source_id"]} for r in records],
            "has_next_page": False, "offset": 0, "total": len(records)}


def envelope(status: int, answer: Any, *, key: str = "statusCode") -> dict[str, Any]:
    """An API Gateway Lambda-proxy envelope around an answer (``body`` is a JSON string)."""
    return {key: status, "headers": {"Content-Type": "application/json"},
            "body": answer if isinstance(answer, str) else json.dumps(answer),
            "isBase64Encoded": False}


def recorded_answers() -> list[dict[str, Any]]:
    """MDF v2 answers, bare and enveloped, for every service, with what each one means.

    Each entry: ``service``, ``route`` (``/search`` or ``/card/<id>``), ``status`` (the HTTP
    status), ``text`` (the body as sent), and ``expect``: ``("ok", answer)``,
    ``("not found", None)`` or ``("error", None)``, which is how ``BackendClient._request``
    and ``mdf.core.errors.is_success`` take it (``backend_client.py:699-723``,
    ``errors.py:32-53``); the Foundry environment checks these against mdf-cli itself.
    """
    search = v2_search(v2_result())
    card = v2_card()
    missing = {"success": False, "detail": "Dataset not found"}
    shapes: list[tuple[str, str, int, Any, tuple[str, Any]]] = [
        ("search bare", "/search", 200, search, ("ok", search)),
        ("search enveloped", "/search", 200, envelope(200, search), ("ok", search)),
        ("card bare", f"/card/{SOURCE_ID}", 200, card, ("ok", card)),
        ("card enveloped", f"/card/{SOURCE_ID}", 200, envelope(200, card), ("ok", card)),
        ("card enveloped, status as text", f"/card/{SOURCE_ID}", 200,
         envelope("200", card), ("ok", card)),
        ("card enveloped, status_code key", f"/card/{SOURCE_ID}", 200,
         envelope(200, card, key="status_code"), ("ok", card)),
        ("missing bare", f"/card/{SOURCE_ID}", 404, missing, ("not found", None)),
        ("missing enveloped in a 200", f"/card/{SOURCE_ID}", 200, envelope(404, missing),
         ("not found", None)),
        ("server error enveloped in a 200", "/search", 200,
         envelope(500, {"detail": "boom"}), ("error", None)),
        ("server error bare", "/search", 500, {"detail": "boom"}, ("error", None)),
        ("unavailable bare, retried", "/search", 503, {"detail": "down"}, ("error", None)),
        ("2xx saying success false", "/search", 200, {"success": False, "error": "no index"},
         ("error", None)),
        ("envelope whose body is not JSON", "/search", 200, envelope(502, "Bad Gateway"),
         ("error", None)),
        ("not JSON", "/search", 200, "<html>gateway</html>", ("error", None)),
        ("a JSON list", "/search", 200, [search], ("error", None)),
        ("enveloped list", "/search", 200, envelope(200, [search]), ("error", None)),
    ]
    return [{"id": f"{service}: {name}", "service": service, "route": route, "status": status,
             "text": body if isinstance(body, str) else json.dumps(body), "expect": expect}
            for service in APIS for name, route, status, body, expect in shapes]
