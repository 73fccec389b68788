"""The documentation site: ``mkdocs build --strict`` (a broken link, a page missing from the nav or a
README section the hook cannot find fails it), then headless Chromium opens the built index and a
metric page, served over HTTP from the build folder as any static host serves it, and finds what they
must say, with no error in the browser's console (the search index loads)."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from pathlib import Path

from test_leaderboard_browser import driver

ROOT = Path(__file__).resolve().parent.parent


def test_the_site_builds_strictly_and_opens_in_a_browser(tmp_path):
    from selenium.webdriver.common.by import By

    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    built = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=ROOT,
                           capture_output=True, text=True, env=env, timeout=300)  # fmt: skip
    assert built.returncode == 0, built.stderr
    for page in ("index.html", "metrics/index.html", "suites/index.html", "plugins/index.html",
                 "guide/ood/index.html", "store/index.html", "leaderboards/privacy/index.html"):  # fmt: skip
        assert (site / page).is_file(), page
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    browser = driver()
    try:
        browser.get(f"{url}/")
        assert browser.title.startswith("harness")
        assert "pip install -e ." in browser.find_element(By.TAG_NAME, "article").text  # the two commands
        links = {a.get_attribute("textContent").strip() for a in browser.find_elements(By.CSS_SELECTOR, "nav a")}
        assert {"Metrics", "Suites", "Plugins", "Your own models and data"} <= links
        browser.get(f"{url}/metrics/")
        text = browser.find_element(By.TAG_NAME, "article").text
        assert "ood.fpr_at_95_tpr" in text and "lira-offline" in text and "Wilson" in text
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        browser.quit()
        server.shutdown()
