"""The web console in a real headless browser against the real platform.

Debian's chromium driven by Playwright (never a browser Playwright downloads): sign in,
start a run from the form and watch it succeed, read a failed run's error and logs and
retry it, cancel a running run, a viewer sees no actions and a forged action is refused,
a change without the CSRF header is refused, and an artifact is downloaded. Each page
is saved as a screenshot under ``test-results/console/`` (git-ignored), for CI to keep.

The platform is the session's ``default_platform`` (`make up`'s stack); the console
works in a tenant of its own, so the runs it counts are its own.
"""

from __future__ import annotations

import http.server
import shutil
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from interlock.devstack import Platform as DefaultPlatform
from interlock.devstack import Tenant
from interlock.devstack._paths import console_dir

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext, Page, Playwright

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).resolve().parents[1] / "test-results" / "console"
RUN_TIMEOUT_MS = 120_000
ENVOY_BODY_LIMIT = 65_536  # max_direct_response_body_size_bytes in the gateway template

GREETING = """\
name: console-greeting
description: Says hello in four tasks.
input_schema:
  type: object
  required: [name]
  properties:
    name: {type: string, description: Who to greet}
    times: {type: integer, minimum: 1}
tasks:
  - {id: fetch, type: noop}
  - {id: left, type: noop, depends_on: [fetch]}
  - {id: right, type: noop, depends_on: [fetch]}
  - {id: join, type: noop, depends_on: [left, right]}
"""
FLAKY_CALL = """\
name: console-flaky
tasks:
  - {{id: prepare, type: noop}}
  - {{id: call, type: http, depends_on: [prepare], params: {{url: "{url}"}}}}
"""
SLOW = """\
name: console-slow
tasks:
  - {id: wait, type: sleep, params: {duration: 5m}}
"""
REPORT_TEXT = "the console downloads these bytes"
REPORTING = f"""\
name: console-report
tasks:
  - id: write
    type: echo
    params:
      lines: [writing the report]
      interval: 0
      artifact: {{name: report.txt, text: "{REPORT_TEXT}"}}
"""


class _FailsOnce(http.server.BaseHTTPRequestHandler):
    """Answers 500 to its first request, 200 to every later one."""

    calls = 0

    def do_GET(self) -> None:
        type(self).calls += 1
        self.send_response(500 if type(self).calls == 1 else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass(frozen=True)
class Platform:
    url: str
    tenant: Tenant
    """The console's own tenant; its admin signs in."""
    admin_token: str
    flaky_url: str

    def call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"authorization": f"Bearer {self.admin_token}", **kwargs.pop("headers", {})}
        with httpx.Client(base_url=self.url, trust_env=False, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def define(self, yaml: str) -> None:
        response = self.call(
            "POST", "/api/v1/workflows", content=yaml, headers={"content-type": "application/yaml"}
        )
        assert response.status_code == 201, response.text

    def start(self, workflow: str) -> str:
        response = self.call("POST", f"/api/v1/workflows/{workflow}/runs", json={"input": {}})
        assert response.status_code == 201, response.text
        run_id: str = response.json()["run_id"]
        return run_id


@pytest.fixture(scope="module")
def playwright_module() -> Any:
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`,"
            " which `make install` does as root) to run the console's browser tests"
        )
    return pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def flaky_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FailsOnce)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/flaky"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def platform(
    playwright_module: Any, flaky_server: str, default_platform: DefaultPlatform
) -> Platform:
    tenant = default_platform.new_tenant("console")
    token = default_platform.login(tenant.admin_username, tenant.admin_password, tenant.name)
    running = Platform(default_platform.url, tenant, token, flaky_server)
    for definition in (GREETING, FLAKY_CALL.format(url=flaky_server), SLOW, REPORTING):
        running.define(definition)
    return running


@pytest.fixture(scope="module")
def playwright(playwright_module: Any) -> Iterator[Playwright]:
    """One Playwright driver for the module (a thread may run only one)."""
    with playwright_module.sync_playwright() as driver:
        yield driver


def _launch(playwright: Playwright, **options: Any) -> Iterator[BrowserContext]:
    """Debian's chromium with a fresh profile, closed and removed afterwards."""
    profile = tempfile.mkdtemp(prefix="ilk-chromium-")
    context = playwright.chromium.launch_persistent_context(
        profile,
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_FLAGS,
        viewport={"width": 1280, "height": 800},
        **options,
    )
    context.set_default_timeout(30_000)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser(playwright: Playwright, platform: Platform) -> Iterator[BrowserContext]:
    yield from _launch(playwright, base_url=platform.url)


@pytest.fixture
def page(browser: BrowserContext) -> Iterator[Page]:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert errors == [], f"the page raised: {errors}"


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, tenant: Tenant, username: str = "", password: str = "") -> None:
    """Sign in to ``tenant`` as ``username`` (default: the tenant's admin)."""
    page.goto("/#/sign-in")  # the browser may hold a session from an earlier test
    page.get_by_label("Username").fill(username or tenant.admin_username)
    page.get_by_label("Password").fill(password or tenant.admin_password)
    page.get_by_label("Tenant").fill(tenant.name)
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Runs", exact=True).wait_for()


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="Sign out").click()
    page.get_by_role("heading", name="Sign in to Interlock").wait_for()


def wait_for_run_status(page: Page, status: str) -> None:
    page.locator(f"h1 .badge.st-{status}").wait_for(timeout=RUN_TIMEOUT_MS)


def csrf_token(page: Page) -> str:
    token: str = page.evaluate(
        "() => document.cookie.split('; ').find((c) => c.startsWith('interlock_csrf='))"
        ".split('=')[1]"
    )
    return token


def post_from_page(page: Page, path: str, headers: dict[str, str]) -> dict[str, Any]:
    """A POST sent by the page's own scripts (the browser adds its cookies)."""
    answer: dict[str, Any] = page.evaluate(
        """async ([path, headers]) => {
            const response = await fetch(path, {method: "POST", headers, body: "{}"});
            return {status: response.status, type: response.headers.get("content-type"),
                    body: await response.json()};
        }""",
        [path, {"content-type": "application/json", **headers}],
    )
    return answer


# --- the tests -------------------------------------------------------------------------


def test_every_console_file_fits_in_a_gateway_response() -> None:
    files = [path for path in console_dir().rglob("*") if path.is_file()]
    assert files
    too_big = [str(path) for path in files if path.stat().st_size > ENVOY_BODY_LIMIT]
    assert too_big == []


def test_sign_in_start_a_run_from_the_form_and_watch_it_succeed(
    page: Page, platform: Platform
) -> None:
    sign_in(page, platform.tenant)
    cookies = {cookie["name"]: cookie for cookie in page.context.cookies()}
    assert cookies["interlock_session"]["httpOnly"] and cookies["interlock_refresh"]["httpOnly"]
    assert cookies["interlock_session"]["sameSite"] == "Strict"
    page.goto("/#/workflows")
    page.get_by_role("link", name="console-greeting").click()
    page.get_by_role("heading", name="Compare versions").wait_for()
    screenshot(page, "workflow")
    page.get_by_label("name *").fill("Ada")
    page.get_by_label("times").fill("2")
    page.get_by_role("button", name="Start run").click()
    page.wait_for_url("**/#/runs/*")
    wait_for_run_status(page, "succeeded")
    graph = page.get_by_role("group", name="Task graph: 4 tasks in 3 columns")
    assert graph.locator(".node").count() == 4
    assert page.locator(".node rect.n-succeeded").count() == 4
    assert '"name":"Ada"' in page.locator("dd code").inner_text()
    page.get_by_role("button", name="Task join: succeeded").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Task join succeeded").wait_for()
    screenshot(page, "run")
    for name, heading in (
        ("workflows", "Workflows"),
        ("dead-letters", "Dead letters"),
        ("notifications", "Notifications"),
        ("overview", "Overview"),
    ):
        page.goto(f"/#/{name}")
        page.get_by_role("heading", name=heading, exact=True).wait_for()
        screenshot(page, name)


def test_a_failed_run_shows_its_error_and_logs_and_succeeds_when_retried(
    page: Page, platform: Platform
) -> None:
    run_id = platform.start("console-flaky")
    sign_in(page, platform.tenant)
    page.goto(f"/#/runs/{run_id}")
    wait_for_run_status(page, "failed")
    page.get_by_role("button", name="Task call:").first.click()
    error = page.get_by_test_id("task-error")
    error.wait_for()
    assert "500" in error.inner_text()
    page.get_by_role("button", name="Show this task's log").click()
    assert page.locator("#log-task").input_value() == "call"
    # The HTTP task logs its answer: the failed attempt's line, in the task's log.
    line = page.get_by_role("log", name="Task log").get_by_text(f"GET {platform.flaky_url} 500")
    line.wait_for(timeout=RUN_TIMEOUT_MS)
    assert "call#1 WARNING" in line.inner_text()
    screenshot(page, "run-failed")
    page.get_by_role("button", name="Retry failed tasks").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Reason").fill("the endpoint is back")
    dialog.get_by_role("button", name="Retry failed tasks").click()
    wait_for_run_status(page, "succeeded")
    assert page.locator(".node rect.n-succeeded").count() == 2


def test_cancel_a_running_run_after_confirming(page: Page, platform: Platform) -> None:
    run_id = platform.start("console-slow")
    sign_in(page, platform.tenant)
    page.goto(f"/#/runs/{run_id}")
    page.get_by_role("button", name="Task wait: running").wait_for(timeout=RUN_TIMEOUT_MS)
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("dialog").get_by_role("button", name="Keep as is").click()
    assert platform.call("GET", f"/api/v1/runs/{run_id}").json()["status"] == "running"
    page.get_by_role("button", name="Cancel run").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel run").click()
    wait_for_run_status(page, "cancelled")
    assert page.locator("[data-action]").count() == 0


def test_a_change_without_the_csrf_header_is_refused(page: Page, platform: Platform) -> None:
    run_id = platform.start("console-slow")
    sign_in(page, platform.tenant)
    refused = post_from_page(page, f"/api/v1/runs/{run_id}/pause", {})
    assert refused["status"] == 403
    assert refused["type"] == "application/problem+json"
    assert refused["body"]["type"].endswith("csrf-refused")
    wrong = post_from_page(page, f"/api/v1/runs/{run_id}/pause", {"x-interlock-csrf": "forged"})
    assert wrong["status"] == 403
    assert platform.call("GET", f"/api/v1/runs/{run_id}").json()["status"] != "paused"
    allowed = post_from_page(
        page, f"/api/v1/runs/{run_id}/cancel", {"x-interlock-csrf": csrf_token(page)}
    )
    assert allowed["status"] == 200, allowed
    assert allowed["body"]["status"] == "cancelled"


def test_a_viewer_sees_no_actions_and_a_forged_action_is_refused(
    page: Page, platform: Platform
) -> None:
    created = platform.call(
        "POST",
        "/api/v1/users",
        json={"username": "console-viewer", "password": "viewer-password", "roles": ["viewer"]},
    )
    assert created.status_code == 201, created.text
    run_id = platform.start("console-slow")
    sign_in(page, platform.tenant, "console-viewer", "viewer-password")
    page.goto(f"/#/runs/{run_id}")
    page.get_by_role("group", name="Task graph: 1 tasks in 1 columns").wait_for()
    assert page.locator("[data-action]").count() == 0
    assert page.get_by_role("button", name="Cancel run").count() == 0
    page.goto("/#/workflows/console-greeting")
    page.get_by_role("heading", name="Versions", exact=True).wait_for()
    assert page.get_by_role("button", name="Start run").count() == 0
    screenshot(page, "run-as-viewer")
    forged = post_from_page(
        page, f"/api/v1/runs/{run_id}/cancel", {"x-interlock-csrf": csrf_token(page)}
    )
    assert forged["status"] == 403
    assert forged["body"]["type"].endswith("forbidden")
    assert platform.call("GET", f"/api/v1/runs/{run_id}").json()["status"] != "cancelled"
    sign_out(page)
    after = page.evaluate("async () => (await fetch('/api/v1/auth/me')).status")
    assert after == 401


def test_the_run_list_counts_and_filters_every_run(page: Page, platform: Platform) -> None:
    # After the tests above: two runs succeeded, two were cancelled, one still sleeps.
    sign_in(page, platform.tenant)
    counts = page.get_by_label("Runs listed by status")
    for text in ("succeeded 2", "cancelled 2", "running 1"):
        counts.get_by_text(text).wait_for()
    assert page.get_by_role("table", name="Runs").locator("tbody tr").count() == 5
    screenshot(page, "runs")
    page.get_by_role("combobox", name="Status").select_option("cancelled")
    page.get_by_role("textbox", name="Workflow").fill("console-slow")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url("**/#/runs?workflow=console-slow&status=cancelled")
    rows = page.get_by_role("table", name="Runs").locator("tbody tr")
    page.get_by_label("Runs listed by status").get_by_text("cancelled 2").wait_for()
    assert rows.count() == 2
    assert rows.filter(has_text="succeeded").count() == 0


def test_an_artifact_downloads_through_its_pre_signed_url(page: Page, platform: Platform) -> None:
    run_id = platform.start("console-report")
    sign_in(page, platform.tenant)
    page.goto(f"/#/runs/{run_id}")  # while it runs: the list of artifacts follows it
    wait_for_run_status(page, "succeeded")
    artifacts = page.get_by_role("table", name="Artifacts")
    artifacts.get_by_role("cell", name="report.txt", exact=True).wait_for()
    assert artifacts.get_by_role("cell", name="write", exact=True).count() == 1
    assert artifacts.get_by_role("cell", name=f"{len(REPORT_TEXT)} B").count() == 1
    screenshot(page, "run-artifacts")
    with page.expect_download() as downloading:
        page.get_by_role("button", name="Download report.txt").click()
    download = downloading.value
    assert "X-Amz-Signature=" in download.url  # the pre-signed URL, not the API's /content
    assert download.suggested_filename == "report.txt"
    assert Path(download.path()).read_bytes() == REPORT_TEXT.encode()


def test_two_versions_are_compared_line_by_line(page: Page, platform: Platform) -> None:
    changed = GREETING.replace("Says hello in four tasks.", "Greets in four tasks.")
    response = platform.call(
        "PUT",
        "/api/v1/workflows/console-greeting",
        content=changed,
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 201, response.text
    sign_in(page, platform.tenant)
    page.goto("/#/workflows/console-greeting")
    diff = page.get_by_label("Changes from v1 to v2")
    diff.wait_for()
    assert diff.locator(".del").all_text_contents() == [
        '- description: "Says hello in four tasks."\n'
    ]
    assert diff.locator(".add").all_text_contents() == ['+ description: "Greets in four tasks."\n']
    page.get_by_role("combobox", name="Version").select_option("1")
    assert "Says hello" in page.get_by_label("Definition of v1").inner_text()
    screenshot(page, "workflow-diff")


# --- the console alone, its API answered by the test (no servers) ----------------------

OFFLINE = "http://console.test"


def _hundred_task_run() -> tuple[dict[str, Any], dict[str, Any]]:
    """A run of 100 tasks: a root, a fan-out of 96 in 8 chains, a join, two after it."""
    tasks: list[dict[str, Any]] = [{"id": "start", "type": "noop"}]
    for chain in range(8):
        previous = "start"
        for step in range(12):
            task_id = f"c{chain}-step{step}"
            tasks.append({"id": task_id, "type": "noop", "depends_on": [previous]})
            previous = task_id
    tasks.append({"id": "join", "type": "noop", "depends_on": [f"c{c}-step11" for c in range(8)]})
    tasks.append({"id": "report", "type": "noop", "depends_on": ["join"]})
    tasks.append({"id": "archive", "type": "noop", "depends_on": ["join"]})
    statuses = ["succeeded", "running", "pending"]
    views = [
        {
            "id": task["id"],
            "status": "failed" if task["id"] == "join" else statuses[index % 3],
            "attempts": 1,
            "scheduled_at": "2026-12-05T08:00:00.000Z",
            "started_at": "2026-12-05T08:00:01.000Z",
            "finished_at": "2026-12-05T08:00:02.000Z",
        }
        for index, task in enumerate(tasks)
    ]
    run = {
        "run_id": "run-100",
        "workflow": "wide",
        "version": 1,
        "status": "running",
        "created_at": "2026-12-05T08:00:00.000Z",
        "finished_at": None,
        "input": {},
        "tasks": views,
    }
    return run, {"name": "wide", "version": 1, "definition": {"name": "wide", "tasks": tasks}}


@pytest.fixture(scope="module")
def offline_browser(playwright: Playwright) -> Iterator[BrowserContext]:
    yield from _launch(playwright)


def test_a_run_of_100_tasks_draws_a_readable_graph(offline_browser: BrowserContext) -> None:
    run, version = _hundred_task_run()
    answers = {
        "/api/v1/auth/me": {"id": "u1", "tenant": "default", "roles": ["viewer"]},
        "/api/v1/runs/run-100": run,
        "/api/v1/workflows/wide/versions/1": version,
    }
    types = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}

    def answer(route: Any) -> None:
        path = route.request.url.removeprefix(OFFLINE).split("?")[0].split("#")[0]
        if path in answers:
            route.fulfill(json=answers[path])
        elif path.startswith("/api/"):
            route.fulfill(status=404, json={"title": "Not Found", "status": 404})
        else:
            file = console_dir() / ("index.html" if path == "/" else path.removeprefix("/console/"))
            route.fulfill(body=file.read_bytes(), content_type=types[file.suffix])

    page = offline_browser.new_page()
    page.route(f"{OFFLINE}/**", answer)
    page.goto(f"{OFFLINE}/#/runs/run-100")
    graph = page.get_by_role("group", name="Task graph: 100 tasks in 15 columns")
    graph.wait_for()
    # Measured in one go: the page redraws the graph every 2 s while the run is running.
    boxes: list[dict[str, float]] = graph.locator(".node rect").evaluate_all(
        "rects => rects.map((rect) => rect.getBoundingClientRect().toJSON())"
    )
    assert len(boxes) == 100
    # Full-size nodes, none overlapping another: every label stays readable.
    assert all(box["width"] >= 150 for box in boxes)
    placed = [(b["x"], b["y"], b["x"] + b["width"], b["y"] + b["height"]) for b in boxes]
    for index, (left, top, right, bottom) in enumerate(placed):
        for other in placed[index + 1 :]:
            assert right <= other[0] or other[2] <= left or bottom <= other[1] or other[3] <= top
    # Keyboard: a node is reached with Tab and opened with Enter.
    page.get_by_role("button", name="Task join: failed").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="Task join failed").wait_for()
    screenshot(page, "run-100-tasks")
    page.close()
