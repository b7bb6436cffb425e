"""The leaderboard page in headless Chromium: it loads, sorts on a header click, and is
saved as docs/figures/service_leaderboard.png."""

from __future__ import annotations

from pathlib import Path

import pytest
from service_helpers import LiveServer, bearer, make_settings

from stembench.service.app import create_app
from stembench.service.worker import Worker

CHROMIUM = "/usr/bin/chromium"
SCREENSHOT = Path(__file__).parents[2] / "docs" / "figures" / "service_leaderboard.png"
QUALITIES = {"log-blob": 0.97, "atomap-like": 0.85, "atomsegnet": 0.92}


@pytest.fixture
def chromium_path() -> str:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run the project's bootstrap script (it installs "
                    "Debian's 'chromium' package)", pytrace=False)
    return CHROMIUM


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_leaderboard_sorts_in_browser(tmp_path, database_url, globus_auth,
                                      chromium_path) -> None:
    from playwright.sync_api import sync_playwright

    app = create_app(make_settings(tmp_path, database_url))
    with LiveServer(app) as server:
        import httpx

        for model, quality in QUALITIES.items():
            answer = httpx.post(f"{server.url}/api/jobs", headers=bearer("alice"),
                                json={"model": model, "options": {"quality": quality}})
            assert answer.status_code == 201, answer.text
        worker = Worker(app.state.settings, app.state.sessions)
        while worker.run_once():
            pass
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium_path, args=[
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1366, "height": 768})
            page.goto(server.url + "/")
            page.wait_for_selector("table.sortable tbody tr")
            page.wait_for_function("document.querySelector('figure img').complete")

            def models() -> list[str]:
                return page.locator("table.sortable tbody td:nth-child(2) strong").all_inner_texts()

            # ranked by mean F1 on load: higher quality first
            assert models() == ["log-blob", "atomsegnet", "atomap-like"]
            page.click("th:has-text('model')")
            assert models() == ["atomap-like", "atomsegnet", "log-blob"]
            page.click("th:has-text('PSNR')")  # most tolerant of noise first
            assert models() == ["log-blob", "atomsegnet", "atomap-like"]
            page.click("th:has-text('PSNR')")
            assert models() == ["atomap-like", "atomsegnet", "log-blob"]
            SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            browser.close()
    app.state.engine.dispose()
