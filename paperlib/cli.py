"""The `paperlib` command line: one subcommand per job; input errors become one line and exit status 2."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from paperlib.errors import PaperlibInputError


def write_table(df: pd.DataFrame, out: Path) -> None:
    """Write a table as CSV, JSON Lines or Parquet, by the file's extension (list columns as JSON in CSV)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    suffix = out.suffix.lower()
    if suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        df.to_json(out, orient="records", lines=True, force_ascii=False)
    elif suffix in (".csv", ".tsv"):
        import json

        flat = df.copy()
        for col in flat.columns:
            if flat[col].map(lambda v: isinstance(v, (list, dict))).any():
                flat[col] = flat[col].map(lambda v: json.dumps(v, ensure_ascii=False))
        flat.to_csv(out, index=False, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise PaperlibInputError(out, None, "unknown output format: expected a .csv, .tsv, .jsonl or .parquet file name")


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

    papers = load_corpus(args.corpus)
    row = find_paper(papers, " ".join(args.paper))
    print(f"papers closest to: {papers['title'].iloc[row]}")
    for rank, r in enumerate(similar(papers, papers["paper_id"].iloc[row], k=args.k).itertuples(), start=1):
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
    report = run_build(BuildConfig(out=args.out, quick=args.quick, only=args.only, corpus=args.corpus,
                                   taxonomy=args.taxonomy, notebooks=args.notebooks,
                                   progress=not args.no_progress))
    print(format_report(report))
    return 0 if report.ok else 1


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
        "by TF-IDF cosine with the shared terms and tags."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("paper", nargs="+", help="paper id, exact title or words of the title")
    p.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
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
    p.set_defaults(func=cmd_build)

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
