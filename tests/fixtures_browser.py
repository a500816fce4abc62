"""The Prefect UI in a real browser: headless Chromium from the distribution, driven by Playwright.

Browsers that download themselves (`playwright install`) do not work on the
machines the tests run on, so the tests launch the distribution's `chromium`
and install it with apt-get when it is missing (CI runs as root), so that
`make test` works from a clean clone.

`RunPage` and `ResumeForm` are what support staff use: a flow run's page in
the V1 UI (`/runs/flow-run/<id>`, the link the demo prints)
and its Resume dialog. Every form is saved as a screenshot under
tests/output/screenshots/ (ignored by git) so a person can look at them.
"""

from __future__ import annotations

import functools
import re
import shutil
import threading
import time
import warnings
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

import pytest

from certrenew.errors import CertRenewError
from certrenew.lab.packages import ensure_installed

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Locator, Page

T = TypeVar("T")
P = ParamSpec("P")
B = TypeVar("B", bound="OnBrowserThread")

SCREENSHOTS = Path(__file__).parent / "output" / "screenshots"
# Headless in a container: no sandbox (root), no GPU, no calls home.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# Tall enough that the Resume dialog shows a whole form (CSR and portal table included)
# without scrolling, so each screenshot holds the entire form.
VIEWPORT = {"width": 1400, "height": 3200}
# Times a person submits a form again after the UI said the server was busy (503).
SUBMITS = 4
# A resume restarts the run in a new process (~5 s) that replays its finished steps.
NEXT_FORM_SECONDS = 240
# A run waiting for an answer: Paused while its process waits, Suspended after.
WAITING = re.compile("Paused|Suspended")


def chromium_path() -> str:
    """The distribution's Chromium, installed with apt-get when it is missing."""
    try:
        return ensure_installed(lambda: shutil.which("chromium"), "chromium")
    except CertRenewError as exc:
        pytest.fail(str(exc))


class BrowserThread:
    """Playwright's sync API on a thread of its own; `run` calls into it from anywhere.

    The sync API leaves its event loop marked as running on the thread that
    started it, so asyncio code on that thread (the lab's TLS servers, scans,
    Prefect's sync calls) would fail with "Cannot run the event loop while
    another loop is running". Browser calls run on one dedicated thread instead.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="browser")
        self._thread = self._pool.submit(threading.current_thread).result()

    def run(self, call: Callable[[], T]) -> T:
        if threading.current_thread() is self._thread:
            return call()
        return self._pool.submit(call).result()

    def close(self) -> None:
        self._pool.shutdown()


class OnBrowserThread(Protocol):
    thread: BrowserThread


def in_browser(method: Callable[Concatenate[B, P], T]) -> Callable[Concatenate[B, P], T]:
    """Run a page object's method on the browser thread."""

    @functools.wraps(method)
    def call(self: B, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.thread.run(lambda: method(self, *args, **kwargs))

    return call


@dataclass
class BrowserUser:
    """Things a page object needs: the browser thread, its page, and where screenshots go."""

    thread: BrowserThread
    page: Page
    screenshots: Path


@pytest.fixture(scope="session")
def browser() -> Iterator[tuple[BrowserThread, Browser]]:
    from playwright.sync_api import expect, sync_playwright

    executable = chromium_path()
    # The machines are shared and busy: the UI may take seconds to show what it will show.
    expect.set_options(timeout=30_000)
    thread = BrowserThread()
    playwright = thread.run(lambda: sync_playwright().start())
    try:
        launched = thread.run(
            lambda: playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        )
        yield thread, launched
        thread.run(launched.close)
    finally:
        thread.run(playwright.stop)
        thread.close()


@pytest.fixture
def browser_user(
    browser: tuple[BrowserThread, Browser], request: pytest.FixtureRequest
) -> Iterator[BrowserUser]:
    """A fresh browser context for the test, its screenshot folder emptied."""
    thread, launched = browser
    folder = SCREENSHOTS / request.node.name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    context = thread.run(lambda: launched.new_context(viewport=VIEWPORT))  # type: ignore[arg-type]
    thread.run(lambda: context.set_default_timeout(60_000))
    user = BrowserUser(thread, thread.run(context.new_page), folder)
    try:
        yield user
    finally:
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:
            thread.run(lambda: _keep_failure(user))
        thread.run(context.close)


def _keep_failure(user: BrowserUser) -> None:
    """What the browser showed when the test failed, next to the forms' screenshots."""
    user.page.screenshot(path=user.screenshots / "failure.png", full_page=True)
    (user.screenshots / "failure.html").write_text(user.page.content(), encoding="utf-8")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item,
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keeps each phase's report on the test item, for `browser_user` to see a failure."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def state_badge(page: Page) -> Locator:
    """The run's state as the run page shows it, next to its name."""
    return page.locator(".state-badge").first


def _field_title(title: str) -> re.Pattern[str]:
    """A field's label as the UI shows it: its title, plus " (Optional)" when it may be empty."""
    return re.compile(rf"^{re.escape(title)}( \(Optional\))?$")


class ResumeForm:
    """The Resume dialog of a paused run: the form's description and its fields."""

    def __init__(self, user: BrowserUser) -> None:
        self.thread = user.thread
        self.page = user.page
        self.folder = user.screenshots
        self.dialog = self.page.get_by_role("dialog")
        self.card = self.page.locator(".p-modal__card")
        # The form's description; fields' own descriptions are articles inside the form.
        self.text = self.dialog.locator(".p-modal__body > article")

    @in_browser
    def description(self) -> str:
        return self.text.inner_text()

    def field(self, title: str) -> Locator:
        label = self.page.locator(".schema-form-property__label", has_text=_field_title(title))
        return self.dialog.locator(".schema-form-property").filter(has=label)

    @in_browser
    def fill(self, title: str, value: str) -> None:
        self.field(title).locator("textarea").fill(value)

    @in_browser
    def choose(self, title: str, option: str) -> None:
        """Pick a dropdown's option (enum fields): the keyboard opens the list, a click picks."""
        self.field(title).locator("button.p-select-button__control").focus()
        self.page.keyboard.press("ArrowDown")
        self.page.get_by_role("option", name=option, exact=True).click()
        from playwright.sync_api import expect

        expect(self.field(title).locator(".p-select-button__value")).to_have_text(option)

    @in_browser
    def tick(self, title: str) -> None:
        """Switch a yes/no field (the UI shows booleans as a toggle) on."""
        from playwright.sync_api import expect

        switch = self.field(title).get_by_role("switch")
        switch.click()
        expect(switch).to_have_attribute("aria-checked", "true")

    @in_browser
    def screenshot(self, name: str) -> Path:
        path = self.folder / f"{len(list(self.folder.iterdir())) + 1:02d}-{name}.png"
        self.card.screenshot(path=path)
        return path

    @in_browser
    def submit(self) -> None:
        """Submit and wait for the UI to say the run resumed.

        A Prefect server on SQLite answers 503 when a write collides with
        another ("database is locked"); Prefect's Python client retries those,
        the UI shows "Failed to resume flow run" and a person submits again.
        So does this, a few times, with a warning in the test report; any
        other refusal fails the test with the server's answer.
        """
        from playwright.sync_api import expect

        for attempt in range(1, SUBMITS + 1):
            with self.page.expect_response(lambda r: r.url.endswith("/resume")) as sent:
                self.dialog.get_by_role("button", name="Submit").click()
            answer = sent.value
            if answer.status != 503 or attempt == SUBMITS:
                break
            expect(self.page.get_by_text("Failed to resume flow run").first).to_be_visible()
            warnings.warn(
                f"the Prefect server answered 503 to a resume ({answer.text()}); submitted again",
                stacklevel=1,
            )
        assert answer.ok, f"the server refused the resume ({answer.status}): {answer.text()}"
        expect(self.page.get_by_text("Flow run resumed").first).to_be_visible()
        # Not waited for: the run leaving its wait. With its process still there, it may be
        # waiting at the next question before the page shows anything else.
        expect(self.dialog).to_be_hidden()


class RunPage:
    """A flow run's page in the Prefect UI, as support staff open it from a link."""

    def __init__(self, user: BrowserUser, url: str) -> None:
        self.user = user
        self.thread = user.thread
        self.page = user.page
        self.url = url

    @in_browser
    def wait_state(self, name: str, timeout: float = NEXT_FORM_SECONDS) -> None:
        from playwright.sync_api import expect

        self.page.goto(self.url)
        expect(state_badge(self.page)).to_have_text(name, timeout=timeout * 1000)

    @in_browser
    def open_form(self, shows: str, timeout: float = NEXT_FORM_SECONDS) -> ResumeForm:
        """Open Resume once the run asks the question whose description `shows` that text.

        The page follows the run's state by itself: after a submit the run
        goes on (in its waiting process, or replaying its steps in a new one)
        before it is Paused or Suspended again. The
        dialog shows the new form only once its schema and description are
        saved, so when it does not show `shows`, the page is loaded afresh.
        """
        from playwright.sync_api import Error, expect

        form = ResumeForm(self.user)
        deadline = time.monotonic() + timeout
        self.page.goto(self.url)
        while True:
            left_ms = max(1_000.0, (deadline - time.monotonic()) * 1000)
            try:
                expect(state_badge(self.page)).to_have_text(WAITING, timeout=left_ms)
                self.page.get_by_role("button", name="Resume").click()
                expect(form.text).to_contain_text(shows, timeout=30_000)
                return form
            except (AssertionError, Error):
                if time.monotonic() > deadline:
                    raise
                self.page.goto(self.url)  # a fresh page asks the server for the form again
