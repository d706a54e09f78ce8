"""03_explorer in a real JupyterLab: start a server on 127.0.0.1 with a token, open the notebook
in headless Chromium, run all cells, and check that the widgets render and follow the search box."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from notebook_runs import CHROMIUM, CHROMIUM_ARGS
from paperlib.paths import notebooks_dir

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(900)]
playwright = pytest.importorskip("playwright.sync_api")

TOKEN = "paperlib-test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def quick_copy(root: Path) -> Path:
    """03_explorer with its parameters cell switched to quick mode and a results folder in `root`."""
    nb = nbformat.read(str(notebooks_dir() / "03_explorer.ipynb"), as_version=4)
    cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
    cell.source = re.sub(r"^quick = False", "quick = True", cell.source, flags=re.M)
    cell.source = re.sub(r"^results_dir = .*$", f"results_dir = {str(root / 'results')!r}", cell.source, flags=re.M)
    assert "quick = True" in cell.source and str(root / "results") in cell.source
    target = root / "03_explorer.ipynb"
    nbformat.write(nb, str(target))
    return target


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run tools/ensure-system-deps)")
    root = tmp_path_factory.mktemp("lab")
    quick_copy(root)
    port = free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "JUPYTER_CONFIG_DIR": str(root / ".config")}
    log = open(root / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser", "--ip", "127.0.0.1",
         "--port", str(port), f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         f"--LabApp.workspaces_dir={root / '.workspaces'}", "--ServerApp.port_retries=0"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("jupyter lab did not start:\n" + (root / "server.log").read_text()[-3000:])
                time.sleep(1)
        yield url, root
    finally:
        # the server and its kernels run in their own session: stop that group only
        try:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(server.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            server.wait(timeout=10)
        log.close()


def test_explorer_runs_in_jupyterlab(lab):
    url, root = lab
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{url}/lab/tree/03_explorer.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # wait until the kernel is idle, then run every cell from the top (Shift+Enter runs and advances)
            page.locator(".jp-StatusBar-Widget", has_text="Idle").first.wait_for(timeout=180_000)
            cells = page.locator(".jp-Notebook .jp-Cell")
            n_cells = cells.count()
            cells.first.click()
            page.keyboard.press("Escape")
            for _ in range(n_cells):
                page.keyboard.press("Shift+Enter")
                page.wait_for_timeout(150)

            count = page.locator(".jp-OutputArea-output .widget-html-content", has_text="papers match").first
            try:
                count.wait_for(timeout=300_000)
            except playwright.TimeoutError:
                page.screenshot(path=str(root / "failure.png"), full_page=True)
                raise AssertionError(f"the explorer did not render; see {root / 'failure.png'} and "
                                     f"{root / 'server.log'}; page errors: {errors}") from None
            search = page.locator(".jp-OutputArea-output .widget-text input").first
            assert search.is_visible()
            assert page.locator(".jp-OutputArea-output .widget-select-multiple").count() == 4  # theme, kind, domain, method
            page.locator(".jp-OutputArea-output .js-plotly-plot").first.wait_for(timeout=60_000)
            before = count.text_content().strip()
            assert re.match(r"\d+ of \d+ papers match", before), before

            search.click()
            search.type("distillation", delay=20)
            page.wait_for_function(
                "([el, before]) => el.textContent.trim() !== before.trim()",
                arg=[count.element_handle(), before], timeout=60_000)
            after = count.text_content().strip()
            n_before, n_after = (int(re.match(r"(\d+)", t).group(1)) for t in (before, after))
            assert n_after < n_before, (before, after)
            # the results table follows, and corpus text in it is escaped text
            assert page.locator(".jp-OutputArea-output table.paperlib-results tbody tr").count() == min(n_after, 50)
            # the cells after the explorer ran too: the last one writes the example reading list
            reading_list = root / "results" / "reading-list-distillation.md"
            deadline = time.monotonic() + 180
            while not reading_list.exists() and time.monotonic() < deadline:
                page.wait_for_timeout(500)
            assert reading_list.exists()
            assert errors == []
        finally:
            browser.close()
