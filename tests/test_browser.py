"""The static site in Debian's headless Chromium, opened from disk with no network: charts render,
hovering works, no JavaScript error, and corpus text that looks like HTML stays text."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from notebook_runs import CHROMIUM, CHROMIUM_ARGS, collection, quick_run
from paperlib.site import build
from paperlib.paths import default_corpus_path

pytestmark = [pytest.mark.slow, pytest.mark.browser]
playwright = pytest.importorskip("playwright.sync_api")

CORPUS_NOTEBOOKS = re.compile(r"^0[0-3]_")
INJECTIONS = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>"]
INJECTION_ABSTRACT = ("We propose a knowledge distillation method in which a small student network learns from "
                      "the soft labels of a large teacher network on image classification, and we report accuracy "
                      "on CIFAR-100 and ImageNet.")


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (run tools/ensure-system-deps)")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Page:
    """A page opened from disk that records console errors, page errors, dialogs and network requests."""

    def __init__(self, browser, path: Path):
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.remote: list[str] = []
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", self._dialog)
        self.page.on("request", lambda r: None if r.url.startswith(("file:", "data:", "blob:", "about:"))
                     else self.remote.append(r.url))
        self.page.goto(path.resolve().as_uri())
        self.page.wait_for_load_state("load")

    def _dialog(self, dialog):
        self.dialogs.append(dialog.message)
        dialog.dismiss()

    def wait_for_charts(self) -> int:
        n = self.page.locator(".plotly-graph-div").count()
        if n:
            self.page.wait_for_function(
                "n => document.querySelectorAll('.plotly-graph-div .main-svg').length >= n", arg=n, timeout=20000)
        return n

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def shipped_site(tmp_path_factory):
    """The site of the shipped corpus, exported from the quick runs of the corpus notebooks
    (test_notebooks runs the others; their pages use the same export)."""
    executed = []
    for path in [p for p in collection() if CORPUS_NOTEBOOKS.match(p.name)]:
        result = quick_run(path, tmp_path_factory)
        if Path(result.executed).exists():
            executed.append(result.executed)
    site_dir = tmp_path_factory.mktemp("site-shipped")
    build.export_site(executed, site_dir)
    return site_dir


@pytest.fixture(scope="module")
def injection_site(tmp_path_factory):
    """`paperlib build --corpus` on a corpus whose titles are HTML/script, for the corpus notebooks."""
    root = tmp_path_factory.mktemp("injection")
    lines = default_corpus_path().read_text(encoding="utf-8").splitlines()
    body = [ln for ln in lines[2:] if ln.strip()]
    body[0] = body[0].removeprefix("Subscribe")
    pairs = body[: 2 * 40]
    for title in INJECTIONS:
        pairs += [title, INJECTION_ABSTRACT]
    corpus = root / "injection.txt"
    corpus.write_text("\n".join(pairs) + "\n", encoding="utf-8")
    report = build.run_build(build.BuildConfig(out=str(root / "build"), quick=True, only=r"^0[1-3]_",
                                               corpus=str(corpus), progress=False))
    assert report.ok, build.format_report(report)
    return root / "build" / "site"


def test_index_links_every_page_and_pages_render_offline(browser, shipped_site):
    index = Page(browser, shipped_site / "index.html")
    hrefs = index.page.eval_on_selector_all("section.notebook h2 a", "els => els.map(e => e.getAttribute('href'))")
    exported = {p.stem for p in shipped_site.glob("*.html")} - {"index"}
    assert {Path(h).stem for h in hrefs} == exported
    assert index.page.locator("section.notebook").count() == len(collection())
    assert index.errors == [] and index.remote == []
    index.close()
    charts = 0
    for href in hrefs:
        page = Page(browser, shipped_site / href)
        charts += page.wait_for_charts()
        assert page.errors == [], f"{href}: JavaScript errors {page.errors}"
        assert page.remote == [], f"{href}: tried the network: {page.remote}"
        assert page.dialogs == []
        page.close()
    assert charts >= 6


def test_map_hover_shows_the_paper(browser, shipped_site):
    page = Page(browser, shipped_site / "02_method_map.html")
    assert page.wait_for_charts() >= 3
    point = page.page.locator(".plotly-graph-div").first.locator(".scatterlayer .point").first
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    page.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.page.wait_for_selector(".hoverlayer .hovertext", timeout=5000)
    label = page.page.locator(".hoverlayer .hovertext").first.text_content()
    assert "theme:" in label and "kind:" in label
    assert page.errors == []
    page.close()


HOVER_JS = """
([needle]) => {
  const gd = document.querySelectorAll('.plotly-graph-div')[0];
  for (let c = 0; c < gd.data.length; c++) {
    const texts = gd.data[c].text || [];
    for (let i = 0; i < texts.length; i++) {
      if (String(texts[i]).includes(needle)) {
        Plotly.Fx.hover(gd, [{curveNumber: c, pointNumber: i}]);
        return true;
      }
    }
  }
  return false;
}
"""


def test_injected_titles_show_as_text(browser, injection_site):
    for name in ("index.html", "01_corpus_tour.html", "02_method_map.html", "03_explorer.html"):
        page = Page(browser, injection_site / name)
        page.wait_for_charts()
        page.page.wait_for_timeout(300)
        assert page.dialogs == [], f"{name}: a script from the corpus ran"
        assert page.errors == [], f"{name}: {page.errors}"
        assert page.page.locator("img[src='x']").count() == 0, f"{name}: corpus markup became an element"
        scripts = page.page.eval_on_selector_all("script", "els => els.map(e => e.textContent)")
        assert not any(re.search(r"<script>alert\(1\)|<img src=x", s) for s in scripts)
        if name == "03_explorer.html":  # the example query's results table
            cells = page.page.eval_on_selector_all("td", "els => els.map(e => e.textContent)")
            assert set(INJECTIONS) <= set(cells)
        if name == "02_method_map.html":  # the map's hover label
            assert page.page.evaluate(HOVER_JS, ["alert(1)</script>"]) is False  # stored escaped
            assert page.page.evaluate(HOVER_JS, ["&lt;script&gt;alert(1)"])
            page.page.wait_for_selector(".hoverlayer .hovertext", timeout=5000)
            label = page.page.locator(".hoverlayer .hovertext").first.text_content()
            assert INJECTIONS[0] in label
            assert page.dialogs == []
        page.close()
