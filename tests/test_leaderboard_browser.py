"""The HTML leaderboard in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``, through Selenium) opens the page from disk, logs no console error, sorts by a
column, switches tabs, and shows a model named like an XSS payload as text."""

from __future__ import annotations

import shutil

import pytest

from harness.leaderboard.html import page
from harness.leaderboard.table import build
from tests.test_leaderboard import HEADLINES, record

EVIL = "<img src=x onerror=alert(1)>"


def driver():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        pytest.skip("no Chromium here: `apt-get install chromium chromium-driver` (Debian) runs this test")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is in the dev extra")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=webdriver.ChromeService(executable_path=chromedriver), options=options)


def test_the_page_sorts_switches_tabs_and_escapes_in_a_real_browser(tmp_path):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    records = [
        record("zoo:b", "accuracy.top1", 0.80), record("zoo:c", "accuracy.top1", 0.95),
        record(EVIL, "accuracy.top1", 0.90),
        record("zoo:b", "calibration.ece", 0.02, direction="lower"),
        record("zoo:c", "calibration.ece", 0.09, direction="lower"),
        record(EVIL, "calibration.ece", 0.05, direction="lower"),
    ]  # fmt: skip
    path = tmp_path / "board.html"
    path.write_text(page(build(records, HEADLINES), records, "test board"))
    browser = driver()
    try:
        browser.get(path.as_uri())
        errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
        models = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "tbody tr td.model")][:3]
        assert models == ["zoo:c", EVIL, "zoo:b"]  # ranked by accuracy
        assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
        ece = next(th for th in browser.find_elements(By.TAG_NAME, "th") if th.text.startswith("ECE"))
        ece.click()  # first click: largest first
        first_table = browser.find_element(By.TAG_NAME, "table")
        order = [row.find_element(By.CSS_SELECTOR, "td.model").text for row in
                 first_table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip
        assert order == ["zoo:c", EVIL, "zoo:b"]
        ece.click()  # again: smallest first
        order = [row.find_element(By.CSS_SELECTOR, "td.model").text for row in
                 first_table.find_elements(By.CSS_SELECTOR, "tbody tr")]  # fmt: skip
        assert order == ["zoo:b", EVIL, "zoo:c"]
        accuracy = next(th for th in browser.find_elements(By.TAG_NAME, "th") if th.text.startswith("accuracy"))
        browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='calibration']").click()
        assert ece.is_displayed() and not accuracy.is_displayed()
        browser.find_element(By.CSS_SELECTOR, "nav button[data-tab='all']").click()
        assert accuracy.is_displayed()
        with pytest.raises(NoAlertPresentException):
            browser.switch_to.alert.text  # noqa: B018 - the payload never ran
        assert not [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    finally:
        browser.quit()
