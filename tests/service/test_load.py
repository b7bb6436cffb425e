"""The service holds a bounded load: 50 concurrent mixed requests (pages, JSON, figures)
all answered 200, /api/health answered within a second throughout, and no figure rendered on
the request path twice (latency figures: bench/bench_service_load.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import service_fakes as fakes
from service_load import hammer, mixed_paths, populated_server


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
def test_fifty_concurrent_mixed_requests(tmp_path, database_url, dataset_cache) -> None:
    with populated_server(tmp_path, database_url, fakes=Path(__file__).parent) as (url, jobs):
        figures = tmp_path / "data" / "figures"
        ready = set(figures.glob("*.png"))  # the worker rendered the radars as jobs finished
        result = hammer(url, mixed_paths(fakes.GROUP, jobs), concurrency=50)
        rendered = set(figures.glob("*.png")) - ready
    assert result.statuses == [200] * 50, result.statuses
    assert result.health and set(result.health) == {200}, result.health
    # the one figure the worker had not made (first and last models overlaid) is an overlay:
    # drawn for the five requests that asked for it, kept in memory, never on disk
    assert not rendered and len(ready) >= 3
