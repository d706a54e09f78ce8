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
# a paper whose abstract holds the markup and script, and whose title mixes markup, entities and LaTeX
MARKUP_TITLE = r"Distillation with <b>markup</b> &amp; {braces} 50% \emph{x} -- ``quotes''"
MARKUP_ABSTRACT = INJECTION_ABSTRACT + " <script>alert(2)</script> <img src=y onerror=alert(3)> </textarea>"


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
    pairs += [MARKUP_TITLE, MARKUP_ABSTRACT]
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
        assert page.page.locator("img[src='x'], img[src='y']").count() == 0, f"{name}: corpus markup became an element"
        scripts = page.page.eval_on_selector_all("script", "els => els.map(e => e.textContent)")
        assert not any(re.search(r"<script>alert\(\d\)|<img src=[xy]", s) for s in scripts)
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


# ------------------------------------------------------------------ the offline explorer and paper pages

EXPLORER_STATE = """
() => {
  const root = document.querySelector('.paperlib-explorer');
  const gd = root.querySelector('.plotly-graph-div');
  return {count: root.querySelector('.pe-count').textContent, highlighted: gd.data[1].x.length,
          rows: root.querySelectorAll('table.dataTable tbody tr').length,
          info: root.querySelector('.dt-info').textContent};
}
"""


def open_explorer(browser, site_dir: Path) -> Page:
    page = Page(browser, site_dir / "03_explorer.html")
    page.page.wait_for_selector(".paperlib-explorer[data-ready=true]", timeout=30000)
    return page


def wait_for_count(page: Page, n: int, total: int) -> dict:
    page.page.wait_for_function("t => document.querySelector('.pe-count').textContent === t",
                                arg=f"{n} of {total} papers match", timeout=10000)
    return page.page.evaluate(EXPLORER_STATE)


def download(page: Page, fmt: str) -> str:
    with page.page.expect_download() as info:
        page.page.click(f".pe-export button[data-format={fmt}]")
    return Path(info.value.path()).read_text(encoding="utf-8")


def explorer_table_of(corpus_file: Path | None = None):
    """The table the explorer notebook builds (shipped taxonomy, method names, registry notebooks)."""
    from paperlib import load_corpus
    from paperlib.corpus.methods import extract_methods
    from paperlib.corpus.tagging import tag_papers
    from paperlib.site import registry
    from paperlib.site.explorer import explorer_table

    papers = load_corpus(corpus_file or default_corpus_path())
    tagged = extract_methods(tag_papers(papers))
    return explorer_table(tagged, registry.notebooks_by_paper(registry.load_registry(), papers))


def test_offline_explorer_search_facets_map_and_reading_lists(browser, shipped_site):
    from paperlib.site.explorer import Query, filter_papers
    from paperlib.site.reading import reading_list

    table = explorer_table_of()
    total = len(table)
    page = open_explorer(browser, shipped_site)
    state = page.page.evaluate(EXPLORER_STATE)
    assert state["count"] == f"{total} of {total} papers match" and state["highlighted"] == 0
    assert state["rows"] == 25 and f"of {total} entries" in state["info"]

    page.page.fill(".pe-search", "Knowledge  DISTILLATION")
    words = filter_papers(table, Query(text="knowledge distillation"))
    state = wait_for_count(page, len(words), total)
    assert 0 < len(words) < total and state["highlighted"] == len(words)
    assert state["rows"] == min(len(words), 25) and f"filtered from {total} total entries" in state["info"]
    shown = page.page.eval_on_selector_all(".paperlib-explorer table.dataTable tbody td:first-child a",
                                           "els => els.map(e => e.textContent)")
    assert set(shown) <= set(words["title"])

    page.page.select_option("select.pe-facet[data-facet=kind]", ["method"])
    narrower = filter_papers(table, Query(text="knowledge distillation", kind=("method",)))
    state = wait_for_count(page, len(narrower), total)
    assert 0 < len(narrower) < len(words) and state["highlighted"] == len(narrower)
    assert download(page, "md") == reading_list(narrower, "md")
    assert download(page, "bib") == reading_list(narrower, "bib")

    page.page.check(".pe-has-code")
    with_code = filter_papers(table, Query(text="knowledge distillation", kind=("method",), has_code=True))
    assert wait_for_count(page, len(with_code), total)["highlighted"] == len(with_code)
    page.page.click(".pe-clear")
    assert wait_for_count(page, total, total)["highlighted"] == 0

    page.page.select_option("select.pe-facet[data-facet=methods]", ["EWC", "LoRA"])
    named = filter_papers(table, Query(methods=("EWC", "LoRA")))
    assert wait_for_count(page, len(named), total)["highlighted"] == len(named) > 0
    assert page.errors == [] and page.remote == [] and page.dialogs == []
    page.close()


def test_explorer_table_and_map_open_paper_pages(browser, shipped_site):
    page = open_explorer(browser, shipped_site)
    page.page.fill(".pe-search", "catastrophic forgetting")
    page.page.wait_for_function("() => document.querySelector('.paperlib-explorer').querySelector('.plotly-graph-div')"
                                ".data[1].x.length > 0", timeout=10000)
    link = page.page.locator(".paperlib-explorer table.dataTable tbody td:first-child a").first
    title = link.text_content()
    link.click()
    page.page.wait_for_url("**/papers/*.html")
    assert page.page.locator("h1").text_content() == title
    assert page.page.locator("ol.neighbours li").count() == 10
    assert page.errors == [] and page.remote == []

    page.page.go_back()
    page.page.wait_for_selector(".paperlib-explorer[data-ready=true]", timeout=30000)
    page.page.fill(".pe-search", "catastrophic forgetting")
    page.page.wait_for_function("() => document.querySelector('.paperlib-explorer').querySelector('.plotly-graph-div')"
                                ".data[1].x.length > 0", timeout=10000)
    point = page.page.locator(".paperlib-explorer .scatterlayer .trace").nth(1).locator(".point").first
    point.scroll_into_view_if_needed()
    box = point.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.page.mouse.move(x, y)
    page.page.wait_for_function("() => document.querySelector('.pe-hover a').textContent !== ''", timeout=5000)
    hovered = page.page.locator(".pe-hover a").text_content()
    page.page.mouse.click(x, y)
    page.page.wait_for_url("**/papers/*.html")
    assert page.page.locator("h1").text_content() == hovered
    assert page.errors == [] and page.remote == [] and page.dialogs == []
    page.close()


def test_index_and_notebook_pages_link_paper_pages(browser, shipped_site):
    index = Page(browser, shipped_site / "index.html")
    index.page.click("text=All 257 papers")
    index.page.wait_for_url("**/papers/index.html")
    assert index.page.locator("table tr").count() == 258
    index.page.locator("table a").first.click()
    index.page.wait_for_url("**/papers/*.html")
    assert index.page.locator("h2", has_text="Tags and their evidence").count() == 1
    assert index.errors == [] and index.remote == []
    index.close()


def test_hostile_corpus_stays_text_in_the_explorer_and_paper_pages(browser, injection_site, tmp_path):
    from paperlib import load_corpus
    from paperlib.corpus.reader import paper_id

    hostile = [*INJECTIONS, MARKUP_TITLE]
    page = open_explorer(browser, injection_site)
    total = int(page.page.evaluate(EXPLORER_STATE)["count"].split()[0])
    page.page.fill(".pe-search", "alert(")
    state = wait_for_count(page, 3, total)  # two titles and one abstract hold a script
    assert state["highlighted"] == 3
    cells = page.page.eval_on_selector_all(".paperlib-explorer table.dataTable tbody td",
                                           "els => els.map(e => e.textContent)")
    assert set(INJECTIONS) <= set(cells) and MARKUP_TITLE in cells
    options = page.page.eval_on_selector_all("select.pe-facet option", "els => els.map(e => e.textContent)")
    assert options and all("<" not in o for o in options)
    bib = tmp_path / "hostile.bib"
    bib.write_text(download(page, "bib"), encoding="utf-8")
    back = load_corpus(bib)
    assert set(hostile) <= set(back["title"])
    assert back["abstract"].str.contains("<script>alert(2)</script>", regex=False).any()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in download(page, "md")
    for title in hostile:
        page.page.goto((injection_site / "papers" / f"{paper_id(title)}.html").resolve().as_uri())
        assert page.page.locator("h1").text_content() == title
    assert "<script>alert(2)</script>" in page.page.locator("section.abstract p").text_content()
    assert page.page.locator("img").count() == 0
    assert page.dialogs == [], "a script from the corpus ran"
    assert page.errors == [] and page.remote == []
    page.close()


def test_slides_open_from_disk_and_move_on(browser, tmp_path_factory):
    """A notebook's reveal.js slides (charts included) open from disk, go to the next slide and
    fold the solutions, with no error and no request leaving the machine."""
    from paperlib.site import html as site_html

    path = next(p for p in collection() if p.name.startswith("10_"))
    result = quick_run(path, tmp_path_factory)
    assert result.status == "ok", result.error
    deck_dir = tmp_path_factory.mktemp("slides")
    site_html.write_plotly_js(deck_dir)
    site_html.write_reveal_assets(deck_dir)
    deck = deck_dir / site_html.slides_name(path.stem)
    site_html.export_slides(result.executed, deck)
    page = Page(browser, deck)
    page.page.wait_for_function("window.Reveal && Reveal.isReady()", timeout=20000)
    assert page.page.evaluate("Reveal.getTotalSlides()") >= 5
    first = page.page.evaluate("Reveal.getIndices()")
    page.page.keyboard.press("ArrowRight")
    page.page.wait_for_function("h => Reveal.getIndices().h !== h", arg=first["h"], timeout=5000)
    assert page.page.locator("details.paperlib-solution").count() >= 2
    assert page.page.evaluate("[...document.querySelectorAll('details.paperlib-solution')].every(d => !d.open)")
    assert page.errors == [] and page.remote == [] and page.dialogs == []
    page.close()
