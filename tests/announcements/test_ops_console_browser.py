"""The queue console in a real browser (Debian's chromium, headless, driven by chromedriver through Selenium).

An operator opens /admin/rq, is sent to the login page, signs in, and sees the dashboard's tables filled
by its own JavaScript from the JSON views (which the login cookie authorises); a reviewer is turned away.
"""

import shutil

import pytest

from server.wechat.simulator.serve import ThreadedServer
from tests.api import PASSWORD

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (.ci/run installs them)")


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,900"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def served(app):
    server = ThreadedServer(app).start()
    yield server.url
    server.stop()


def _sign_in(browser, base: str, username: str) -> None:
    from selenium.webdriver.common.by import By

    browser.get(base + "/admin/rq/")
    assert browser.current_url.endswith("/admin/rq/login")
    browser.find_element(By.ID, "username").send_keys(username)
    browser.find_element(By.ID, "password").send_keys(PASSWORD)
    browser.find_element(By.CSS_SELECTOR, "button[type=submit]").click()


def test_an_operator_signs_in_and_sees_the_queues(browser, served, world, run_jobs):
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    from jobs import queues
    from jobs.system import ping

    queues.enqueue(ping)  # fails in the worker (no argument): the failed registry has one job
    run_jobs()
    queues.enqueue(ping, "waiting")  # stays queued
    _sign_in(browser, served, "city_admin")
    # The dashboard's script fetches /admin/rq/0/data/queues.json with the cookie and fills the table, and
    # redraws it every few seconds: read the row's cells in one go, again if a redraw replaced the row meanwhile.
    def default_queue_cells(driver):
        try:
            row = driver.find_element(
                By.XPATH, "//table[@id='queues']//tr[@data-role='queue'][td[1][normalize-space()='default']]")
            cells = [td.text.strip() for td in row.find_elements(By.TAG_NAME, "td")]
        except (NoSuchElementException, StaleElementReferenceException):
            return False
        return cells if len(cells) >= 7 and cells[1].isdigit() and cells[6].isdigit() else False

    cells = WebDriverWait(browser, 20).until(default_queue_cells)
    # name, queued, deferred, scheduled, started, finished, failed, canceled
    assert cells[0] == "default" and cells[1] == "1" and cells[6] == "1"
    cookies = {c["name"]: c for c in browser.get_cookies()}
    assert cookies["unionhub_ops"]["httpOnly"] and cookies["unionhub_ops"]["sameSite"] == "Strict"
    # the cookie is not readable by the page's scripts
    assert "unionhub_ops" not in browser.execute_script("return document.cookie")


def test_a_reviewer_is_turned_away(browser, served, world):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    _sign_in(browser, served, "city_reviewer")
    # the form's POST loads the login page again with the refusal: wait for it (the click does not)
    alert = WebDriverWait(browser, 20).until(ec.presence_of_element_located((By.CSS_SELECTOR, "[role=alert]")))
    assert alert.get_attribute("data-code") == "role_forbidden" and "无权" in alert.text
    browser.get(served + "/admin/rq/")
    assert browser.current_url.endswith("/admin/rq/login")
