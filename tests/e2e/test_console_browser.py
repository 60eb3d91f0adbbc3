"""The operations console in headless Chromium (Selenium + Debian's chromium-driver), JavaScript off, against
the embedded runtime with the demo scenarios: list → open C-1 → every node SUCCEEDED with its output;
approve a waiting review and see the workflow finish; a bad action shows the server's refusal; a
screenshot of each page. Where Chromium or its driver is missing the tests skip with the reason (the
JSON API tests in tests/integration/test_console_api.py run regardless).

``POWERX_SCREENSHOTS=docs/images`` writes the screenshots into the docs (docs/operations.md shows them)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from powerx_agent.console.app import ConsoleContext
from powerx_agent.console.server import ConsoleServer
from powerx_agent.deps import get_deps
from powerx_agent.ingest.service import workflow_id_for
from powerx_agent.local.demo import c1_event, run_c1
from powerx_agent.ops.review import decide_review
from tests.integration.helpers import running_canary, waiting_review

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
ACTOR = "browser-tests"


def _skip_reason() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (make setup installs the test extras)"
    if not Path(CHROMIUM).exists():
        return "chromium is not installed (scripts/ensure-chromium installs Debian's chromium with apt-get)"
    if not Path(DRIVER).exists():
        return "chromedriver is not installed (scripts/ensure-chromium installs Debian's chromium-driver)"
    return None


pytestmark = pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")


@pytest.fixture(scope="module")
def console(runtime):
    server = ConsoleServer(ConsoleContext(get_deps, ACTOR, "embedded runtime (browser tests)"), 0).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
                "--window-size=1400,1800", "--hide-scrollbars",
                f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.javascript": 2})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=DRIVER))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    wanted = os.environ.get("POWERX_SCREENSHOTS")
    return (REPO / wanted) if wanted else tmp_path_factory.mktemp("screenshots")


def screenshot(browser, shots: Path, name: str) -> None:
    path = shots / f"console-{name}.png"
    height = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]["height"]
    browser.set_window_size(1400, min(max(int(height) + 40, 700), 2600))
    assert browser.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


def css(browser, selector: str):
    from selenium.webdriver.common.by import By

    return browser.find_elements(By.CSS_SELECTOR, selector)


def element(browser, by: str, value: str):
    """The element once the page that holds it has loaded (a form post answers with a new page; a loaded
    machine is slow)."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, 60).until(lambda b: b.find_element(by, value))
    except TimeoutException:
        raise AssertionError(f"no {by}={value!r} on {browser.current_url}:\n{browser.page_source[:3000]}") from None


def confirm(browser, form: str, reason: str | None = None) -> None:
    """Fill a confirmation page as an operator does: the reason (when asked), the box ticked, submitted."""
    from selenium.webdriver.common.by import By

    if reason is not None:
        element(browser, By.NAME, "reason").send_keys(reason)
    element(browser, By.NAME, "confirm").click()
    element(browser, By.CSS_SELECTOR, f"#{form} button[type=submit]").click()


def test_given_c1_when_listed_and_opened_then_every_node_succeeded_with_its_output(runtime, console, browser, shots):
    runtime.sandbox.reset()
    result = run_c1(runtime, suffix=f"-browser-{int(time.time() * 1000)}")
    assert result.ok, result.expectations
    browser.get(console.url + "workflows?tenant=acme")
    assert not css(browser, "script")  # server-rendered: the page reads with JavaScript off
    row = css(browser, f'tr[data-workflow="{result.workflow_id}"] a')
    assert row, browser.page_source[:2000]
    screenshot(browser, shots, "workflows")
    row[0].click()
    assert result.workflow_id in browser.title
    nodes = {n.get_attribute("data-node"): n for n in css(browser, "details.node")}
    assert {k: nodes[k].get_attribute("data-status") for k in ("render", "archive", "tell-owner")} == {
        "render": "SUCCEEDED", "archive": "SUCCEEDED", "tell-owner": "SUCCEEDED"}
    assert nodes["approve"].get_attribute("data-status") == "SKIPPED"
    render_output = nodes["render"].get_attribute("textContent")
    assert '"plugin": "report-renderer"' in render_output and '"name": "daily-42"' in render_output
    assert css(browser, "#graph svg") and css(browser, "#chain-state")[0].text.lower() == "verified"
    assert css(browser, "#console-link")[0].get_attribute("href").startswith("https://us-east-1.console.aws")
    # the bounded decision record: the selected strategy listed, the rest counted, where to see every candidate
    assert css(browser, '#decision tr.candidate[data-matched="True"]')
    assert "candidate(s) in all, every one listed" in css(browser, "#decision-bound")[0].text
    screenshot(browser, shots, "workflow")


def test_given_a_waiting_review_when_approved_in_the_console_then_the_workflow_finishes(runtime, console, browser,
                                                                                      shots, uid):
    from selenium.webdriver.common.by import By

    workflow_id, review_id = waiting_review(runtime, f"-browser-{uid}")
    browser.get(console.url + f"workflows/{workflow_id}")
    assert css(browser, "#live"), "a running workflow's page refreshes itself"
    browser.get(console.url + "reviews")
    screenshot(browser, shots, "reviews")
    css(browser, f'tr[data-review="{review_id}"] a.approve')[0].click()
    screenshot(browser, shots, "approve")
    confirm(browser, "decide", "checked the large report")
    assert "approved" in element(browser, By.ID, "done").text
    assert runtime.wait_idle(timeout=60)
    browser.get(console.url + f"workflows/{workflow_id}")
    assert css(browser, "#wf-status .badge")[0].text == "SUCCEEDED"
    assert css(browser, 'details[data-node="approve"]')[0].get_attribute("data-status") == "SUCCEEDED"
    assert not css(browser, "#live")


def test_given_a_review_closed_meanwhile_when_approved_then_the_servers_refusal_not_a_trace(runtime, console, browser,
                                                                                          uid):
    from selenium.webdriver.common.by import By

    _, review_id = waiting_review(runtime, f"-closed-{uid}", rows=300_000)
    browser.get(console.url + f"reviews/{review_id}/approve")
    deps = get_deps()
    metrics = deps.metrics()
    # someone else approves it first (approving keeps the trail complete for the docs harness's repair run)
    assert decide_review(deps, metrics, review_id, "approved", "someone-else", "closed first").status == 200
    metrics.flush()
    confirm(browser, "decide", "too late")
    error = element(browser, By.ID, "error").text
    assert "already closed" in error and "Traceback" not in browser.page_source
    assert runtime.wait_idle(timeout=60)


def test_given_the_other_pages_when_opened_then_they_render_and_are_captured(runtime, console, browser, shots):
    from selenium.webdriver.common.by import By

    browser.get(console.url + "strategies")
    assert css(browser, 'tr[data-strategy="report-on-job-completed"]')
    screenshot(browser, shots, "strategies")
    browser.get(console.url + "strategies/test")
    element(browser, By.NAME, "event").send_keys((REPO / "tests/events/c1-plugin-job-completed.json").read_text())
    element(browser, By.CSS_SELECTOR, "#strategy-test button").click()
    assert "report-on-job-completed" in element(browser, By.ID, "decision-reason").text
    screenshot(browser, shots, "strategy-test")
    # a decision record's revision (the workflow page links here with it): no longer kept, and said so
    browser.get(console.url + "strategies/test?revision=r999999")
    assert element(browser, By.NAME, "revision").get_attribute("value") == "r999999"
    element(browser, By.NAME, "event").send_keys((REPO / "tests/events/c1-plugin-job-completed.json").read_text())
    element(browser, By.CSS_SELECTOR, "#strategy-test button").click()
    assert "r999999 is no longer kept" in element(browser, By.ID, "revision-note").text
    assert css(browser, "tr.candidate")
    browser.get(console.url + "health?verify=1h")
    assert len(css(browser, "#metrics tr[data-metric]")) == 5 and "completeness" in css(browser, "#audit-verify")[0].text
    screenshot(browser, shots, "health")


def test_given_a_deferred_event_when_replayed_from_the_events_page_then_its_workflow_runs(runtime, console, browser,
                                                                                        shots, uid):
    from selenium.webdriver.common.by import By

    from powerx_agent.ops.flags import set_flag

    deps = get_deps()
    set_flag(deps, "agent-orchestrator", False, ACTOR)
    try:
        detail = c1_event(f"-deferred-browser-{uid}")
        runtime.put_event("plugin.job.completed", detail)
        assert runtime.wait_idle(timeout=60)
    finally:
        set_flag(deps, "agent-orchestrator", True, ACTOR)
    browser.get(console.url + "events?status=DEFERRED&since=1h")
    row = css(browser, f'tr[data-event="{detail["event_id"]}"]')
    assert row and row[0].get_attribute("data-status") == "DEFERRED"
    screenshot(browser, shots, "events")
    row[0].find_element(By.CSS_SELECTOR, "a.replay").click()
    assert "would send 1" in element(browser, By.ID, "dry-run").text
    screenshot(browser, shots, "replay")
    confirm(browser, "replay")
    assert "Replayed" in element(browser, By.ID, "done").text
    assert runtime.wait_idle(timeout=60)
    workflow_id = workflow_id_for("acme", detail["idempotency_key"])
    browser.get(console.url + f"workflows/{workflow_id}")
    assert css(browser, "#wf-status .badge")[0].text == "SUCCEEDED"


def test_given_a_running_canary_when_aborted_from_the_strategies_page_then_the_baseline_decides_again(
        runtime, console, browser, shots, uid, tmp_path):
    from selenium.webdriver.common.by import By

    sid = running_canary(uid, tmp_path)
    browser.get(console.url + f"strategies?strategy={sid}")
    card = element(browser, By.ID, f"canary-{sid}")
    assert card.get_attribute("data-status") == "RUNNING"
    assert "canary v2 against baseline v1, deciding 10% of the events" in card.text and "by bob" in card.text
    hit = css(browser, f'#canary-{sid} tr[data-measure="hit_rate"] td')
    assert [c.text for c in hit[1:3]] == ["95.0% [83.5%, 98.6%] 38/40", "97.5% [95.3%, 98.7%] 351/360"]
    assert css(browser, f"#canary-{sid} .verdict")[0].get_attribute("data-abort") == "false"
    assert css(browser, f'tr[data-strategy="{sid}"][data-version="2"] a.canary-mark')
    screenshot(browser, shots, "canary")
    css(browser, f"#canary-{sid} a.reject")[0].click()
    screenshot(browser, shots, "canary-abort")
    confirm(browser, "canary-action", "failure rate climbing on the archive plugin")
    assert "canary aborted" in element(browser, By.ID, "done").text
    deps = get_deps()
    last = sorted(deps.audit.chain(f"STRAT#{sid}"), key=lambda r: r["seq"])[-1]
    assert last["kind"] == "strategy.canary_aborted" and last["data"]["actor"] == ACTOR
    assert int(deps.strategies.active(sid)["version"]) == 1
    browser.get(console.url + f"strategies?strategy={sid}")
    assert element(browser, By.ID, f"canary-{sid}").get_attribute("data-status") == "ABORTED"
    assert not css(browser, f"#canary-{sid} a.reject")
    # the confirmation page of a canary that ended meanwhile refuses with the reason, not a trace
    browser.get(console.url + f"strategies/{sid}/canary/promote")
    assert "not running any more" in element(browser, By.ID, "error").text
