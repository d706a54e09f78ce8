"""The main job: corpus tables, every notebook executed headless, and the static site.

`run_build(BuildConfig(...))` parses, tags and relates the corpus into `<out>/data/` (CSV and
Parquet), executes each notebook with papermill into `<out>/notebooks/` (a failing notebook
does not stop the others; its executed copy keeps the traceback), and exports the pages, one page
per paper (`papers/`) and `index.html` into `<out>/site/`. The teacher's edition (`site/`) folds
the exercises' solutions; the student's (`site-student/`) leaves them out; with `slides`, each
edition also holds every notebook as reveal.js slides. `paperlib build` is the command-line face of it.
"""
from __future__ import annotations

import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from paperlib import store
from paperlib.site import pages as paper_pages
from paperlib.site import registry as reg
from paperlib.site import html as site
from paperlib.corpus.reader import load_corpus
from paperlib.paths import default_corpus_path, notebooks_dir

# Parameter names a notebook may declare for the corpus and taxonomy files.
CORPUS_PARAMS = ("corpus_path", "corpus")
TAXONOMY_PARAMS = ("taxonomy_path", "taxonomy")
PAPER_NEIGHBOURS = 10  # nearest papers in the neighbours table and on each paper's page
EXPLORER_PAGE = "03_explorer.html"  # the notebook page that holds the offline explorer
SITE_DIRS = {"teacher": "site", "student": "site-student"}  # edition -> folder under the build's output


@dataclass(frozen=True)
class BuildConfig:
    """What one build does; `only` is a regex on notebook file names."""

    out: str = "build"
    quick: bool = False
    only: str | None = None
    corpus: str | None = None  # None: the shipped corpus
    taxonomy: str | None = None  # None: the shipped taxonomy
    notebooks: str | None = None  # None: the collection's notebooks folder
    kernel_name: str = "python3"
    cell_timeout: int | None = None  # seconds per cell; None: no limit
    data: bool = True  # write the corpus tables
    progress: bool = True
    rerun: bool | str = False  # True or a regex over experiments/runs: recompute instead of loading from the store
    jobs: int = 1  # processes for experiment runs, and notebooks executed at once
    executor: str = "local"  # "local" processes or "dask" (a dask.distributed scheduler)
    scheduler: str | None = None  # dask scheduler address (default: $PAPERLIB_DASK_SCHEDULER)
    reuse: bool = True  # keep a notebook's page when nothing it depends on changed since the last build
    edition: str = "teacher"  # "teacher" (solutions folded, in site/), "student" (none, in site-student/) or "both"
    slides: bool = False  # also write each notebook as reveal.js slides beside its page

    def editions(self) -> tuple[str, ...]:
        """The editions this build writes."""
        if self.edition == "both":
            return site.EDITIONS
        if self.edition not in site.EDITIONS:
            raise ValueError(f"unknown edition {self.edition!r}: expected teacher, student or both")
        return (self.edition,)


@dataclass(frozen=True)
class NotebookResult:
    """Outcome of one notebook: status is "ok" or "failed"; failing cell and error when failed."""

    notebook: str
    seconds: float
    status: str
    executed: str
    html: str = ""
    page_bytes: int = 0
    failing_cell: str = ""
    error: str = ""
    provenance: str = ""  # where an experiment notebook's numbers come from
    reused: bool = False  # nothing it depends on changed since the last build: its page was kept
    extra_seconds: float = 0.0  # exporting the pages beyond the teacher's (student edition, slides)


@dataclass(frozen=True)
class BuildReport:
    """Everything a build produced."""

    config: BuildConfig
    results: tuple[NotebookResult, ...]
    data_files: tuple[str, ...] = ()
    index: str = ""
    data_error: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    seconds: dict = field(default_factory=dict)  # phase -> wall seconds
    site_files: dict = field(default_factory=dict)  # site file (relative path) -> bytes, besides notebook pages
    indexes: dict = field(default_factory=dict)  # edition -> its index.html

    @property
    def ok(self) -> bool:
        return not self.data_error and all(r.status == "ok" for r in self.results)

    def summary(self) -> pd.DataFrame:
        """notebook, seconds, status ("ok", "ok (unchanged)" for a kept page, "failed"), page_kib, failing_cell, error."""
        rows = [{"notebook": r.notebook, "seconds": round(r.seconds, 1),
                 "status": "ok (unchanged)" if r.reused else r.status,
                 "page_kib": round(r.page_bytes / 1024, 1), "failing_cell": r.failing_cell,
                 "error": r.error} for r in self.results]
        return pd.DataFrame(rows, columns=["notebook", "seconds", "status", "page_kib", "failing_cell", "error"])


# ---------------------------------------------------------------- corpus tables

def write_data_table(df: pd.DataFrame, data_dir: str | Path, name: str) -> list[Path]:
    """Write one table as `<name>.csv` and `<name>.parquet` by the store's convention (lists as
    JSON text in CSV and native lists in Parquet, dicts as JSON text)."""
    data_dir = Path(data_dir)
    return [store.write_table(df, data_dir / f"{name}.csv"), store.write_table(df, data_dir / f"{name}.parquet")]


def corpus_tables(corpus: str | Path | None = None, taxonomy: str | Path | None = None,
                  *, neighbours: int = 5) -> dict[str, pd.DataFrame]:
    """Parse, tag and relate a corpus: papers (with tags and methods), neighbours, claims,
    methods (paper_id, method), mentions (typed names with relations), clusters, lineage (edges)."""
    from paperlib.corpus.claims import extract_claims
    from paperlib.corpus.methods import extract_mentions, extract_methods, lineage_graph
    from paperlib.corpus.relate import PaperIndex, cluster_papers, neighbour_table
    from paperlib.corpus.tagging import tag_papers
    from paperlib.corpus.taxonomy import load_taxonomy

    papers = load_corpus(corpus or default_corpus_path())
    tax = load_taxonomy(taxonomy)
    tagged = tag_papers(papers, tax)
    mentions = extract_mentions(tagged)
    with_methods = extract_methods(tagged, mentions_table=mentions)
    index = PaperIndex(taxonomy=tax, random_state=0).fit(with_methods)
    neighbours_df = neighbour_table(with_methods, neighbours, seed=0, index=index)
    methods = with_methods[["paper_id", "methods"]].explode("methods").dropna().rename(columns={"methods": "method"})
    graph = lineage_graph(with_methods, mentions_table=mentions)
    lineage = pd.DataFrame([{"source": u, "target": v, **d} for u, v, d in graph.edges(data=True)])
    if lineage.empty:
        lineage = pd.DataFrame(columns=["source", "target", "method", "relation", "sentence", "ambiguous"])
    try:
        clusters = cluster_papers(with_methods, seed=0, index=index)
    except ValueError:  # a corpus too small to cluster
        clusters = pd.DataFrame(columns=["paper_id", "cluster", "cluster_label", "cluster_terms"])
    return {
        "papers": with_methods,
        "neighbours": neighbours_df,
        "claims": extract_claims(papers),
        "methods": methods.reset_index(drop=True),
        "mentions": mentions,
        "clusters": clusters,
        "lineage": lineage,
    }


def write_corpus_tables(data_dir: str | Path, corpus=None, taxonomy=None) -> list[Path]:
    """Compute the corpus tables and write each as CSV and Parquet into `data_dir`."""
    written = []
    for name, df in corpus_tables(corpus, taxonomy).items():
        written += write_data_table(df, data_dir, name)
    return written


# ---------------------------------------------------------------- notebooks

def notebook_parameters(path: str | Path, *, quick: bool, results_dir: str | Path,
                        corpus: str | Path | None = None, taxonomy: str | Path | None = None) -> dict:
    """The parameters to inject: only those the notebook's `parameters` cell declares. The build has
    already looked up or computed every experiment run, so a notebook only loads them (rerun=False)."""
    import papermill as pm

    declared = pm.inspect_notebook(str(path))
    wanted: dict = {"quick": bool(quick), "results_dir": str(results_dir), "rerun": False}
    if corpus is not None:
        wanted.update({name: str(corpus) for name in CORPUS_PARAMS})
    if taxonomy is not None:
        wanted.update({name: str(taxonomy) for name in TAXONOMY_PARAMS})
    return {k: v for k, v in wanted.items() if k in declared}


def _one_line(text: str, limit: int = 200) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def execute_notebook(path: str | Path, executed: str | Path, parameters: dict, *, cwd: str | Path,
                     kernel_name: str = "python3", cell_timeout: int | None = None) -> NotebookResult:
    """Run one notebook with papermill; on failure keep the executed copy and name the failing cell."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    path, executed = Path(path), Path(executed)
    executed.parent.mkdir(parents=True, exist_ok=True)
    Path(cwd).mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    try:
        pm.execute_notebook(str(path), str(executed), parameters=parameters, kernel_name=kernel_name,
                            cwd=str(cwd), progress_bar=False, execution_timeout=cell_timeout)
    except PapermillExecutionError as exc:
        first_line = next((ln for ln in str(exc.source).splitlines() if ln.strip()), "")
        return NotebookResult(path.name, time.perf_counter() - start, "failed", str(executed),
                              failing_cell=f"In [{exc.exec_count}]: {_one_line(first_line, 80)}",
                              error=_one_line(f"{exc.ename}: {exc.evalue}"))
    except Exception as exc:  # kernel death, timeout, unreadable notebook: still keep going
        return NotebookResult(path.name, time.perf_counter() - start, "failed", str(executed),
                              failing_cell="(kernel)", error=_one_line(f"{type(exc).__name__}: {exc}"))
    return NotebookResult(path.name, time.perf_counter() - start, "ok", str(executed))


@contextmanager
def _kernel_env(**values: str):
    """Environment variables the notebook kernels inherit, restored afterwards."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _entry(path: Path) -> reg.NotebookEntry:
    try:
        return reg.read_entry(path)
    except reg.RegistryError:
        return reg.NotebookEntry(notebook=path.name, title=path.stem, summary="(no metadata.paperlib record)")


# ---------------------------------------------------------------- the build

def run_build(config: BuildConfig) -> BuildReport:
    """Run the whole build; never raises for a failing notebook (see `BuildReport.ok`)."""
    out = Path(config.out)
    data_dir, nb_dir, res_dir = out / "data", out / "notebooks", out / "results"
    site_dirs = {edition: out / SITE_DIRS[edition] for edition in config.editions()}
    corpus = Path(config.corpus).resolve() if config.corpus else None
    taxonomy = Path(config.taxonomy).resolve() if config.taxonomy else None
    source_dir = Path(config.notebooks) if config.notebooks else notebooks_dir()
    warnings: list[str] = []
    start = time.perf_counter()

    data_files: list[Path] = []
    data_error = ""
    tables: dict[str, pd.DataFrame] = {}
    try:
        tables = corpus_tables(corpus, taxonomy, neighbours=PAPER_NEIGHBOURS)
        if config.data:
            for name, df in tables.items():
                data_files += write_data_table(df, data_dir, name)
    except Exception as exc:  # report and still build the notebooks
        data_error = _one_line(f"{type(exc).__name__}: {exc}", 400)
    paper_ids = frozenset(tables["papers"]["paper_id"]) if tables else frozenset()

    paths = reg.notebook_paths(source_dir, config.only)
    for site_dir in site_dirs.values():
        site_dir.mkdir(parents=True, exist_ok=True)
        site.write_plotly_js(site_dir)
        paper_pages.write_assets(site_dir)
        if config.slides:
            site.write_reveal_assets(site_dir)
    phase = {"corpus tables": time.perf_counter() - start}
    reports = _experiment_runs(paths, config, warnings)
    phase["experiment runs"] = time.perf_counter() - start - phase["corpus tables"]
    previous = _read_fingerprints(nb_dir)
    fingerprints, jobs, results = {}, [], []
    for path in paths:
        params = notebook_parameters(path, quick=config.quick, results_dir=(res_dir / path.stem).resolve(),
                                     corpus=corpus, taxonomy=taxonomy)
        executed = nb_dir / path.name
        exports = _exports(path.stem, site_dirs, config.slides)
        page = exports[0][2]
        fingerprints[path.name] = _fingerprint(path, params, reports.get(path.stem), corpus, taxonomy)
        if (config.reuse and not config.rerun and previous.get(path.name) == fingerprints[path.name]
                and executed.is_file() and all(Path(target).is_file() for _, _, target in exports)):
            results.append(NotebookResult(path.name, 0.0, "ok", str(executed), html=page,
                                          page_bytes=Path(page).stat().st_size, reused=True))
            continue
        jobs.append((str(path), str(executed), params, str(res_dir / path.stem), config.kernel_name,
                     config.cell_timeout, exports, paper_ids))
    with _kernel_env(PLOTLY_RENDERER="plotly_mimetype"):
        bar = tqdm(total=len(jobs), desc="notebooks", unit="nb", disable=not config.progress or not jobs)
        for result in _run_notebooks(jobs, max(1, config.jobs)):
            results.append(result)
            bar.set_postfix_str(result.notebook)
            bar.update(1)
        bar.close()
    _write_fingerprints(nb_dir, {r.notebook: fingerprints[r.notebook] for r in results if r.status == "ok"})
    results = [NotebookResult(**{**asdict(r), "provenance": reports[Path(r.notebook).stem].line(
                   "rerun with paperlib build --rerun")}) if Path(r.notebook).stem in reports else r for r in results]
    order = {p.name: i for i, p in enumerate(paths)}
    results.sort(key=lambda r: order.get(r.notebook, 0))
    phase["notebooks"] = time.perf_counter() - start - sum(phase.values())

    indexes, extra = {}, sum(r.extra_seconds for r in results)
    for edition, site_dir in site_dirs.items():
        begin = time.perf_counter()
        indexes[edition] = write_site_index(site_dir, source_dir, corpus, results, warnings, tables=tables,
                                            edition=edition, slides=config.slides)
        if edition != config.editions()[0]:
            extra += time.perf_counter() - begin
    phase["site pages"] = time.perf_counter() - start - sum(phase.values())
    if len(site_dirs) > 1 or config.slides:
        phase["of which student edition and slides"] = extra
    phase["total"] = time.perf_counter() - start
    first = config.editions()[0]
    return BuildReport(config=config, results=tuple(results), data_files=tuple(map(str, data_files)),
                       index=str(indexes[first]), data_error=data_error, warnings=tuple(warnings),
                       seconds={k: round(v, 1) for k, v in phase.items()},
                       site_files=site_file_sizes(site_dirs[first]),
                       indexes={e: str(p) for e, p in indexes.items()})


def _exports(stem: str, site_dirs: dict[str, Path], slides: bool) -> list[tuple[str, str, str]]:
    """(kind, edition, target) of every file exported from one executed notebook; the first
    edition's page comes first."""
    out = []
    for edition, site_dir in site_dirs.items():
        out.append(("page", edition, str(site_dir / f"{stem}.html")))
        if slides:
            out.append(("slides", edition, str(site_dir / site.slides_name(stem))))
    return out


def _package_digest() -> str:
    """A hash of paperlib's own source: any change to the package re-executes every notebook."""
    import hashlib

    h = hashlib.sha256()
    root = Path(__file__).resolve().parents[1]
    for f in sorted(root.rglob("*.py")):
        h.update(str(f.relative_to(root)).encode())
        h.update(f.read_bytes())
    return h.hexdigest()


def _fingerprint(path: Path, params: dict, report, corpus: Path | None, taxonomy: Path | None) -> str:
    """What a notebook's page depends on: the notebook, its parameters, the package, the corpus and
    taxonomy files, and the keys of the experiment runs it loads."""
    import hashlib

    from paperlib.paths import default_taxonomy_path
    from paperlib.store import canonical_json

    h = hashlib.sha256()
    h.update(_package_digest().encode())
    h.update(Path(path).read_bytes())
    h.update(canonical_json(params).encode())
    for f in (corpus or default_corpus_path(), taxonomy or default_taxonomy_path()):
        h.update(Path(f).read_bytes())
    if report is not None:
        h.update(",".join(sorted(r.key for r in report.records)).encode())
    return h.hexdigest()


def _read_fingerprints(nb_dir: Path) -> dict:
    try:
        return json.loads((nb_dir / ".fingerprints.json").read_text())
    except (OSError, ValueError):
        return {}


def _write_fingerprints(nb_dir: Path, fresh: dict) -> None:
    from paperlib.store import write_json

    write_json({**_read_fingerprints(nb_dir), **fresh}, nb_dir / ".fingerprints.json")


def _experiment_runs(paths: list[Path], config: BuildConfig, warnings: list[str]) -> dict:
    """Look up or compute, in one pool, the runs of every experiment notebook about to be built."""
    try:
        from paperlib.experiments.catalog import precompute
    except ImportError as exc:  # the core install has no torch: the notebooks will say so themselves
        warnings.append(f"experiment runs not prepared ({exc}); install paperlib[experiments]")
        return {}
    return precompute([p.stem for p in paths], quick=config.quick, rerun=config.rerun, jobs=config.jobs,
                      executor=config.executor, scheduler=config.scheduler, progress=config.progress)


def _execute_and_export(path: str, executed: str, params: dict, cwd: str, kernel_name: str,
                        cell_timeout: int | None, exports, paper_ids=frozenset()) -> NotebookResult:
    """Execute one notebook and export its pages and slides (`exports`: (kind, edition, target), the
    first edition's page first); a top-level function, so a process pool can run it. `paper_ids`:
    the papers with a page, which the notebook's page links."""
    result = execute_notebook(path, executed, params, cwd=cwd, kernel_name=kernel_name, cell_timeout=cell_timeout)
    if not Path(executed).exists():
        return result
    sizes, extra = {}, 0.0
    for i, (kind, edition, target) in enumerate(exports):
        begin = time.perf_counter()
        try:
            if kind == "page":
                sizes[target] = site.export_page(executed, target, paper_ids=paper_ids, edition=edition)
            else:
                sizes[target] = site.export_slides(executed, target, edition=edition)
        except Exception as exc:
            return NotebookResult(**{**asdict(result), "status": "failed", "failing_cell": f"(export: {kind}, {edition})",
                                     "error": _one_line(f"{type(exc).__name__}: {exc}")})
        if i:
            extra += time.perf_counter() - begin
    page = exports[0][2]
    return NotebookResult(**{**asdict(result), "html": page, "page_bytes": sizes[page], "extra_seconds": extra})


def _run_notebooks(jobs: list[tuple], workers: int):
    """Yield each notebook's result as it finishes, `workers` at a time."""
    if workers <= 1 or len(jobs) <= 1:
        for job in jobs:
            yield _execute_and_export(*job)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(max_workers=min(workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
        for fut in as_completed([pool.submit(_execute_and_export, *job) for job in jobs]):
            yield fut.result()


def write_site_index(site_dir: str | Path, source_dir: str | Path, corpus: str | Path | None,
                     results=(), warnings: list[str] | None = None, *, tables: dict | None = None,
                     edition: str = "teacher", slides: bool = False) -> Path:
    """Write `index.html` listing every notebook of `source_dir`, built this time (`results`) or earlier;
    with the corpus `tables` (`corpus_tables`), also one page per paper and the list of papers.
    `edition` is named on the index; with `slides`, each notebook's slides are linked. Each notebook
    is also copied, as stored, into `notebooks/` to download (the student edition's without solutions)."""
    site_dir = Path(site_dir)
    built = {r.notebook: r for r in results}
    page_rows = []
    for path in reg.notebook_paths(source_dir):
        entry = _entry(path)
        page = site_dir / f"{path.stem}.html"
        r = built.get(path.name)
        status = r.status if r else ("earlier build" if page.exists() else "not built")
        deck = site_dir / site.slides_name(path.stem)
        source = f"{site.NOTEBOOKS_DIR}/{path.name}"
        site.export_notebook(path, site_dir / source, edition=edition)
        page_rows.append({"notebook": path.name, "title": entry.title, "summary": entry.summary,
                          "html": page.name if page.exists() else "", "status": status,
                          "slides": deck.name if slides and deck.exists() else "", "ipynb": source,
                          "page_bytes": page.stat().st_size if page.exists() else 0,
                          "reproduces": list(entry.reproduces), "related": list(entry.related),
                          "provenance": r.provenance if r else ""})
    pages = pd.DataFrame(page_rows, columns=["notebook", "title", "summary", "html", "slides", "ipynb", "status",
                                             "page_bytes", "reproduces", "related", "provenance"])
    corpus_file = Path(corpus) if corpus else default_corpus_path()
    if tables:
        papers = tables["papers"]
    else:
        try:
            papers = load_corpus(corpus_file)
        except Exception as exc:
            if warnings is not None:
                warnings.append(f"corpus not readable for the index: {exc}")
            papers = pd.DataFrame(columns=["paper_id", "title"])
    links = reg.registry_papers(pages, papers)
    explorer = EXPLORER_PAGE if (site_dir / EXPLORER_PAGE).exists() else None
    paper_ids = None
    if tables:
        notebook_pages = {r.notebook: r.html for r in pages.itertuples() if r.html}
        paper_pages.write_paper_pages(site_dir, tables, links, notebook_pages=notebook_pages, explorer=explorer)
        paper_ids = set(tables["papers"]["paper_id"])
    return site.write_index(site_dir, pages, links, corpus_name=corpus_file.name, paper_ids=paper_ids,
                            explorer=explorer, edition=edition)


def export_site(executed: list[str | Path], site_dir: str | Path, *, source_dir: str | Path | None = None,
                corpus: str | Path | None = None, taxonomy: str | Path | None = None,
                papers: bool = True) -> dict[str, int]:
    """Export already executed notebooks to pages plus the shared files, the index and (with
    `papers`) one page per paper of `corpus`; returns the notebook page sizes."""
    site_dir = Path(site_dir)
    site.write_plotly_js(site_dir)
    paper_pages.write_assets(site_dir)
    tables = corpus_tables(corpus, taxonomy, neighbours=PAPER_NEIGHBOURS) if papers else None
    paper_ids = frozenset(tables["papers"]["paper_id"]) if tables else None
    sizes = {Path(p).name: site.export_page(p, site_dir / f"{Path(p).stem}.html", paper_ids=paper_ids)
             for p in executed}
    write_site_index(site_dir, source_dir or notebooks_dir(), corpus, tables=tables)
    return sizes


def site_file_sizes(site_dir: str | Path) -> dict[str, int]:
    """Bytes of the site's files other than notebook pages: the shared scripts and stylesheet,
    the index and every page under `papers/` (relative path -> bytes)."""
    site_dir = Path(site_dir)
    shared = [site.PLOTLY_JS, paper_pages.STYLESHEET, paper_pages.EXPLORER_JS, paper_pages.ITABLES_JS, "index.html"]
    sizes = {name: (site_dir / name).stat().st_size for name in shared if (site_dir / name).is_file()}
    for f in sorted((site_dir / paper_pages.PAPERS_DIR).glob("*.html")):
        sizes[f"{paper_pages.PAPERS_DIR}/{f.name}"] = f.stat().st_size
    return sizes


def _kib(n: float) -> str:
    return f"{n / 1024:.0f} KiB" if n < 1024 * 1024 else f"{n / 1024 / 1024:.1f} MiB"


def format_site_sizes(sizes: dict[str, int]) -> list[str]:
    """Summary lines of `site_file_sizes`: paper pages (count, median and largest) and shared files."""
    lines = []
    papers = sorted(v for k, v in sizes.items() if k.startswith(paper_pages.PAPERS_DIR + "/")
                    and k != f"{paper_pages.PAPERS_DIR}/index.html")
    if papers:
        lines.append(f"paper pages: {len(papers)} in {paper_pages.PAPERS_DIR}/, median "
                     f"{_kib(papers[len(papers) // 2])}, largest {_kib(papers[-1])}, {_kib(sum(papers))} in all; "
                     "no script, one shared stylesheet")
    shared = [f"{k} {_kib(v)}" for k, v in sizes.items()
              if not k.startswith(paper_pages.PAPERS_DIR + "/") and k != "index.html"]
    if shared:
        lines.append("shared files (loaded once, from disk): " + ", ".join(shared)
                     + (f"; index.html {_kib(sizes['index.html'])}" if "index.html" in sizes else ""))
    return lines


def format_report(report: BuildReport) -> str:
    """The end-of-build text: the summary table, then what failed and where to look."""
    lines = []
    summary = report.summary()
    lines.append(summary.drop(columns=["failing_cell", "error"]).to_string(index=False) if len(summary)
                 else "no notebook matched")
    if report.data_files:
        lines.append(f"corpus tables: {len(report.data_files)} files in {Path(report.data_files[0]).parent}")
    if report.data_error:
        lines.append(f"FAILED corpus tables: {report.data_error}")
    for r in report.results:
        if r.status != "ok":
            lines.append(f"FAILED {r.notebook} at {r.failing_cell}: {r.error}\n  executed copy: {r.executed}")
    lines += [f"warning: {w}" for w in report.warnings]
    for r in report.results:
        if r.provenance:
            lines.append(f"{Path(r.notebook).stem}: {r.provenance}")
    lines += format_site_sizes(report.site_files)
    if report.seconds:
        lines.append("time: " + ", ".join(f"{k} {v:.0f} s" for k, v in report.seconds.items()))
    if report.indexes and len(report.indexes) > 1:
        lines += [f"site ({edition} edition): {index}" for edition, index in report.indexes.items()]
    elif report.index:
        lines.append(f"site: {report.index}")
    return "\n".join(lines)
