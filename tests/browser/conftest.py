"""A real headless Chromium (Debian's `chromium`, driven by Playwright for Python) against a real
`durableq serve`. Skips, saying why, where either cannot be had."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.test_http_server import _up, free_port
from tests.support.processes import DURABLEQ, REPO, environment, wait_until

CHROMIUM = os.environ.get("DURABLEQ_TEST_CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = REPO / "test-artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, not per session: sync Playwright holds an event loop while it runs, and the
    anyio tests that come later need to start their own."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        pytest.skip(f"no chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    opened = context.new_page()
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        context.close()


class Served:
    def __init__(self, db: Path, base: str, process: subprocess.Popen[bytes]) -> None:
        self.db, self.base, self.process = db, base, process


def serve(db: Path, *args: str) -> Served:
    port = free_port()
    process = subprocess.Popen(
        [*DURABLEQ, "--db", str(db), "serve", "--bind", f"127.0.0.1:{port}", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment(),
    )
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: _up(base), timeout=30, what="the dashboard's server")
    return Served(db, base, process)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    running = serve(tmp_path / "durableq.db")
    try:
        yield running
    finally:
        running.process.send_signal(signal.SIGTERM)
        running.process.wait(timeout=30)


def screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
