"""The `paperlib` command line: one subcommand per job; input errors become one line and exit status 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from paperlib import store
from paperlib.errors import PaperlibInputError


TABLE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".parquet")


def write_table(df: pd.DataFrame, out: Path) -> None:
    """Write a table by the file's extension through `store.write_table` (list columns as JSON
    text in CSV/TSV, native lists in Parquet)."""
    if out.suffix.lower() not in TABLE_SUFFIXES:
        raise PaperlibInputError(out, None, "unknown output format: expected a .csv, .tsv, .jsonl or .parquet file name")
    store.write_table(df, out)


def cmd_parse(args: argparse.Namespace) -> int:
    from paperlib.corpus.reader import load_corpus_with_report

    df, report = load_corpus_with_report(args.corpus, encoding=args.encoding, strict=not args.lenient, format=args.format)
    if args.out:
        write_table(df, Path(args.out))
    for issue in report.skipped:
        print(f"skipped: {report.source}, line {issue.line}: {issue.reason}", file=sys.stderr)
    for issue in report.duplicates:
        print(f"merged: {report.source}, line {issue.line}: {issue.reason}", file=sys.stderr)
    print(report.summary() + (f" -> {args.out}" if args.out else ""))
    return 0


def cmd_tag(args: argparse.Namespace) -> int:
    from paperlib.corpus.reader import load_corpus
    from paperlib.corpus.tagging import compute_tag_counts, evaluate_tags, format_evaluation, load_gold, tag_papers
    from paperlib.corpus.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(args.taxonomy)
    gold = load_gold(args.evaluate) if args.evaluate else None
    tagged = tag_papers(load_corpus(args.corpus), taxonomy)
    if args.out:
        write_table(tagged, Path(args.out))
    if gold is not None:
        print(format_evaluation(evaluate_tags(tagged, gold, facets=taxonomy.facet_names)))
    else:
        for facet in taxonomy.facet_names:
            counts = compute_tag_counts(tagged, facet)
            print(f"{facet}: " + ", ".join(f"{r.tag} {r.papers}" for r in counts.itertuples()))
    print(f"tagged {len(tagged)} papers with taxonomy {taxonomy.name!r}" + (f" -> {args.out}" if args.out else ""))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from paperlib.corpus.reader import load_corpus
    from paperlib.corpus.relate import find_paper, similar
    from paperlib.corpus.taxonomy import load_taxonomy

    papers = load_corpus(args.corpus)
    row = find_paper(papers, " ".join(args.paper))
    taxonomy = load_taxonomy(args.taxonomy)
    print(f"papers closest to: {papers['title'].iloc[row]}")
    neighbours = similar(papers, papers["paper_id"].iloc[row], k=args.k, taxonomy=taxonomy)
    for rank, r in enumerate(neighbours.itertuples(), start=1):
        print(f"{rank:3d}. {r.similarity:.3f}  {r.title}\n       {r.why}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from paperlib.site.build import BuildConfig, format_report, run_build

    for name in ("corpus", "taxonomy"):
        value = getattr(args, name)
        if value and not Path(value).is_file():
            raise FileNotFoundError(f"--{name} {value}: no such file")
    if args.notebooks and not Path(args.notebooks).is_dir():
        raise FileNotFoundError(f"--notebooks {args.notebooks}: no such folder")
    if args.only:
        import re

        try:
            re.compile(args.only)
        except re.error as e:
            raise ValueError(f"--only {args.only!r} is not a regular expression: {e}") from None
    rerun = _regex_option("--rerun", args.rerun) if args.rerun not in (None, True) else bool(args.rerun)
    report = run_build(BuildConfig(out=args.out, quick=args.quick, only=args.only, corpus=args.corpus,
                                   taxonomy=args.taxonomy, notebooks=args.notebooks,
                                   progress=not args.no_progress, rerun=rerun, jobs=args.jobs,
                                   executor=args.executor, scheduler=args.scheduler, reuse=not args.force))
    print(format_report(report))
    return 0 if report.ok else 1


def _regex_option(flag: str, value: str) -> str:
    import re

    try:
        re.compile(value)
    except re.error as e:
        raise ValueError(f"{flag} {value!r} is not a regular expression: {e}") from None
    return value


def cmd_results(args: argparse.Namespace) -> int:
    from paperlib.experiments.catalog import refresh, verify

    layer = args.layer
    if args.action == "verify":
        table = verify(layer)
        problems = table[table["status"].isin(["stale", "missing"])]
        if table.empty:
            print("every shipped run matches the code and every notebook default has its runs")
        else:
            print(table.to_string(index=False))
        return 1 if len(problems) else 0
    pattern = _regex_option("refresh", args.pattern) if args.pattern else None
    before = refresh(pattern, layer=layer, jobs=args.jobs, executor=args.executor, scheduler=args.scheduler,
                     progress=not args.no_progress)
    after = verify(layer)
    print(f"refreshed: {len(before)} problems before, {len(after)} after")
    if len(after):
        print(after.to_string(index=False))
    return 1 if len(after[after["status"].isin(["stale", "missing"])]) else 0


def _executor_options(p: argparse.ArgumentParser, *, jobs_help: str) -> None:
    p.add_argument("--jobs", type=int, default=1, metavar="N", help=jobs_help)
    p.add_argument("--executor", choices=["local", "dask"], default="local",
                   help="where runs execute: local processes (default) or a dask.distributed cluster")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="dask scheduler, e.g. tcp://HOST:8786 (default: $PAPERLIB_DASK_SCHEDULER)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paperlib",
        description="Parse, tag and relate a corpus of papers on how models are trained, and build the notebook site.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("parse", help="read a corpus file and write it as a table", description=(
        "Read a corpus (listing text, BibTeX, CSV/TSV, JSON, JSON Lines) and write one row per paper."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("--out", help="output file: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--format", choices=["listing", "bibtex", "csv", "tsv", "json", "jsonl"], help="force the input format")
    p.add_argument("--encoding", default="utf-8", help="text encoding of the corpus (default utf-8)")
    p.add_argument("--lenient", action="store_true", help="skip unreadable records and report them instead of failing")
    p.set_defaults(func=cmd_parse)

    p = sub.add_parser("tag", help="tag every paper by the taxonomy, with evidence", description=(
        "Tag each paper of CORPUS on every facet of the taxonomy (theme, kind, domain by default), "
        "with the phrases that led to each tag. With --evaluate, print precision, recall and F1 "
        "against hand labels (a JSON list of {title, theme, kind, domain})."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML (default: the shipped one)")
    p.add_argument("--out", metavar="FILE", help="write the tagged papers: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--evaluate", metavar="GOLD", help="hand labels (JSON) to score the tags against")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("similar", help="the papers closest to one paper, with why", description=(
        "Find the paper given by id, exact title or title words, and list its nearest neighbours "
        "by TF-IDF cosine with the shared terms and the tags both carry under the taxonomy."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("paper", nargs="+", help="paper id, exact title or words of the title")
    p.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML to tag with (default: the shipped one)")
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("build", help="build the corpus tables, run every notebook and write the HTML site", description=(
        "Parse, tag and relate the corpus into OUT/data, execute every notebook with papermill into "
        "OUT/notebooks and export the static site to OUT/site (open OUT/site/index.html). "
        "Exits 1 when a notebook fails, naming it and the failing cell."))
    p.add_argument("--quick", action="store_true", help="pass quick=True to every notebook (fast, for checks)")
    p.add_argument("--only", metavar="REGEX", help="build only the notebooks whose file names match REGEX")
    p.add_argument("--corpus", metavar="FILE", help="build the site for this corpus instead of the shipped one")
    p.add_argument("--taxonomy", metavar="FILE", help="tag with this taxonomy (YAML) instead of the shipped one")
    p.add_argument("--out", default="build", help="output folder (default: build)")
    p.add_argument("--notebooks", metavar="DIR", help="notebook folder (default: the collection's notebooks)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true",
                   help="execute every notebook even when nothing it depends on changed since the last build")
    p.add_argument("--rerun", nargs="?", const=True, default=None, metavar="REGEX",
                   help="recompute experiment runs instead of loading them from the results store "
                        "(all, or those whose experiment or run label matches REGEX)")
    _executor_options(p, jobs_help="processes for experiment runs, and notebooks executed at once (default 1)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("results", help="check or recompute the shipped experiment results", description=(
        "verify: list shipped runs whose key no longer matches the code (stale), runs a notebook's "
        "defaults need that are not shipped (missing) and shipped runs nothing needs (unused); exits 1 "
        "on stale or missing. refresh [REGEX]: recompute the missing and stale runs (and those matching "
        "REGEX) into the shipped folder, deleting stale and unused ones."))
    p.add_argument("action", choices=["verify", "refresh"])
    p.add_argument("pattern", nargs="?", metavar="REGEX", help="refresh: also recompute runs matching REGEX")
    p.add_argument("--layer", metavar="DIR", help="results folder to check (default: the shipped data/results)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    _executor_options(p, jobs_help="processes for the runs (default 1)")
    p.set_defaults(func=cmd_results)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PaperlibInputError as e:
        print(f"paperlib {args.command}: error: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, KeyError, ValueError) as e:
        message = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"paperlib {args.command}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
