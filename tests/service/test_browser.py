"""The leaderboard page in headless Chromium: results submitted through the API (a job run by
the service and two uploaded results) appear, sort on a header click, open a model card,
overlay chosen models on the radar, filter to independently trained models, and download
per-image scores as CSV and JSON; the page is saved as a screenshot (into
docs/figures/service_leaderboard.png when STEMBENCH_UPDATE_FIGURES=1, else a temporary file)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx
import pytest
from service_helpers import LiveServer, bearer, make_settings
from service_uploads import CARD, packed, results_file, shards, upload

from stembench.service.app import create_app
from stembench.service.worker import Worker

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "figures" / "service_leaderboard.png"


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run the project's bootstrap script (it installs "
                    "Debian's 'chromium' package)", pytrace=False)
    return CHROMIUM


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_leaderboard_in_browser(tmp_path, database_url, dataset_cache, globus_auth,
                                chromium_path) -> None:
    from playwright.sync_api import sync_playwright

    app = create_app(make_settings(tmp_path, database_url))
    with LiveServer(app) as server:
        answer = httpx.post(f"{server.url}/api/jobs", headers=bearer("alice"),
                            json={"model": "log-blob", "dataset_preset": "mini",
                                  "options": {"quality": 0.97}})
        assert answer.status_code == 201, answer.text
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for name, options, overlap in (("unet-a", {"quality": 0.92}, "yes"),
                                           ("unet-b", {"quality": 0.85, "fail_from_step": 3},
                                            "no")):
                data = packed(shards(results_file(tmp_path / f"{name}.jsonl", dataset_cache,
                                                  **options)))
                card = {**CARD, "name": name,
                        "training_data": {**CARD["training_data"], "overlaps_benchmark": overlap}}
                assert upload(client, data, card=card).status_code == 202
        worker = Worker(app.state.settings, app.state.sessions)
        while worker.run_once():
            pass
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1920, "height": 1000}, accept_downloads=True)
            page.goto(server.url + "/")
            table = page.locator("section#group-SrTiO3-simulated table.sortable")
            table.locator("tbody tr").first.wait_for()
            page.wait_for_function("document.querySelector('figure img').complete")

            def models() -> list[str]:
                return table.locator("tbody td:nth-child(2) strong").all_inner_texts()

            # ranked by mean F1 on load: higher quality first
            assert models() == ["log-blob", "unet-a", "unet-b"]
            failed = table.locator("tbody td:nth-child(5)").all_inner_texts()
            assert failed[:2] == ["0", "0"] and int(failed[2]) > 0  # unet-b fails at step 3
            table.locator("th:has-text('model')").click()
            table.locator("th:has-text('model')").click()  # a second click reverses
            assert models() == ["unet-b", "unet-a", "log-blob"]
            f1 = table.locator("thead th", has_text="F1")
            f1.click()  # best first
            assert models() == ["log-blob", "unet-a", "unet-b"]
            f1.click()
            assert models() == ["unet-b", "unet-a", "log-blob"]
            row = table.locator("tbody tr", has_text="unet-b")
            row.locator("button.open-card").click()
            dialog = row.locator("dialog")
            assert dialog.is_visible()
            assert "hand-labelled experimental images" in dialog.inner_text()
            assert "uploaded, re-scored here" in dialog.inner_text()
            dialog.locator("button:has-text('close')").click()
            with page.expect_download() as csv_download:
                row.locator("a:has-text('CSV')").click()
            csv_text = Path(csv_download.value.path()).read_text()
            assert csv_text.startswith("image_id,") and csv_text.count("\n") == 103
            with page.expect_download() as json_download:
                row.locator("a:has-text('JSON')").click()
            scores = json.loads(Path(json_download.value.path()).read_text())
            assert scores["model"] == "unet-b" and len(scores["scores"]) == 102
            image = page.locator("section#group-SrTiO3-simulated img.radar")
            row.locator("input.radar-pick").uncheck()
            page.wait_for_function("document.querySelector('img.radar').src.includes('jobs=')")
            page.wait_for_function("(img => img.complete && img.naturalWidth > 0)"
                                   "(document.querySelector('img.radar'))", timeout=120_000)
            assert image.evaluate("img => img.src").count(",") == 1  # two models overlaid
            assert image.evaluate("img => img.naturalWidth") > 0
            row.locator("input.radar-pick").check()
            page.check("#independent-only")
            shown = table.locator("tbody tr:visible td:nth-child(2) strong").all_inner_texts()
            assert sorted(shown) == ["log-blob", "unet-b"]
            page.uncheck("#independent-only")
            f1.click()
            screenshot = (SCREENSHOT if os.environ.get("STEMBENCH_UPDATE_FIGURES") == "1"
                          else tmp_path / SCREENSHOT.name)
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            browser.close()
    app.state.engine.dispose()
