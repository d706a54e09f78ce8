"""The corpus loader: the shipped listing, every supported format, and every kind of bad input."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from paperlib import CorpusFormatError, load_corpus, load_corpus_with_report
from paperlib.corpus.reader import extract_acronym, extract_code_urls, paper_id

ABSTRACT_A = ("We study how networks forget old tasks when trained on new ones. We propose a penalty that keeps "
              "important weights close to their old values, and it works on permuted MNIST. Code is at "
              "https://github.com/example/ewc-demo.")
ABSTRACT_B = ("Curricula order training data from easy to hard. We measure when that helps and find that under "
              "a limited budget the order matters, while at full budget it hardly does at all in our tests.")
ABSTRACT_C = ("Reward models trained on human preference rankings steer language models. We describe a simple "
              "ranking loss and compare it with PPO on several benchmarks, finding it equally strong and cheaper.")


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def listing(*pairs, boilerplate=True):
    head = "Get trending papers in your email inbox once a day!\nGet trending papers in your email inbox!\n"
    body = "\n".join(f"{t}\n{a}" for t, a in pairs)
    return (head + "Subscribe" + body if boilerplate else body) + "\n"


# --- the shipped corpus --------------------------------------------------------------------------

def test_shipped_corpus_counts(corpus_path):
    df, report = load_corpus_with_report(corpus_path)
    assert len(df) == 257
    assert df.loc[0, "title"] == "VideoMAE V2: Scaling Video Masked Autoencoders with Dual Masking"
    assert df.paper_id.is_unique
    assert (df.title.str.strip() != "").all() and (df.abstract.str.strip() != "").all()
    assert report.records_read == 257 and not report.duplicates and not report.skipped
    assert report.format == "listing"
    assert list(df.columns[:5]) == ["paper_id", "title", "abstract", "source", "line"]
    assert df.loc[0, "line"] == 3 and df.loc[1, "line"] == 5


def test_shipped_corpus_keeps_papers_sharing_a_title_prefix(corpus):
    vision_r1 = corpus[corpus.title.str.startswith("Vision-R1:")]
    assert len(vision_r1) == 2
    assert vision_r1.paper_id.nunique() == 2


def test_shipped_corpus_extractions(corpus):
    row = corpus.set_index("title").loc["VideoMAE V2: Scaling Video Masked Autoencoders with Dual Masking"]
    assert row.code_urls == ["https://github.com/OpenGVLab/VideoMAEv2"]
    assert row.acronym == "VideoMAE V2"
    app = corpus[corpus.title == "APP: Anytime Progressive Pruning"].iloc[0]
    assert app.acronym == "APP"
    assert (corpus.code_urls.map(len) > 0).sum() > 30


def test_paper_id_is_stable_and_ignores_case_and_spacing():
    assert paper_id("Learning to Prompt for Continual Learning") == paper_id("learning to  prompt for continual learning")
    assert paper_id("Vision-R1: A") != paper_id("Vision-R1: B")
    assert paper_id("APP: Anytime Progressive Pruning").startswith("app-anytime-progressive-pruning-")


# --- listing format: tolerated quirks ---------------------------------------------------------------

def test_listing_with_bom_crlf_and_blank_lines(tmp_path):
    text = listing(("EWC Again: A Study", ABSTRACT_A), ("When Curricula Work", ABSTRACT_B))
    text = "\ufeff" + text.replace("\n", "\r\n").replace(ABSTRACT_A + "\r\n", ABSTRACT_A + "\r\n\r\n\r\n")
    df = load_corpus(write(tmp_path, "c.txt", text))
    assert df.title.tolist() == ["EWC Again: A Study", "When Curricula Work"]
    assert df.abstract.tolist() == [ABSTRACT_A, ABSTRACT_B]
    assert df.line.tolist() == [3, 7]


def test_listing_without_boilerplate(tmp_path):
    df = load_corpus(write(tmp_path, "c.txt", listing(("A Title", ABSTRACT_A), boilerplate=False)))
    assert df.title.tolist() == ["A Title"]


# --- listing format: broken alternation -----------------------------------------------------------

def test_title_without_abstract_names_file_and_line(tmp_path):
    text = listing(("First Paper", ABSTRACT_A)) + "Orphan Title Without Abstract\n" + "Third Paper\n" + ABSTRACT_C + "\n"
    path = write(tmp_path, "c.txt", text)
    with pytest.raises(CorpusFormatError) as info:
        load_corpus(path)
    err = info.value
    assert err.path == str(path) and err.line == 5
    assert "c.txt, line 5" in str(err) and "expected an abstract" in str(err)
    assert isinstance(err, ValueError)


def test_title_without_abstract_at_end_of_file(tmp_path):
    path = write(tmp_path, "c.txt", listing(("First Paper", ABSTRACT_A)) + "Dangling Title\n")
    with pytest.raises(CorpusFormatError, match=r"line 5: expected an abstract .* end of the file"):
        load_corpus(path)


def test_abstract_where_a_title_should_be(tmp_path):
    path = write(tmp_path, "c.txt", listing(("First Paper", ABSTRACT_A)) + ABSTRACT_B + "\n")
    with pytest.raises(CorpusFormatError, match=r"line 5: expected a title line"):
        load_corpus(path)


def test_lenient_mode_reports_every_skipped_record(tmp_path):
    text = (listing(("First Paper", ABSTRACT_A)) + "Orphan Title\n" + "Third Paper\n" + ABSTRACT_C + "\n"
            + ABSTRACT_B + "\n" + "Last Paper\n" + ABSTRACT_B + "\n")
    df, report = load_corpus_with_report(write(tmp_path, "c.txt", text), strict=False)
    assert df.title.tolist() == ["First Paper", "Third Paper", "Last Paper"]
    assert [(i.line, i.title) for i in report.skipped] == [(5, "Orphan Title"), (8, "")]
    assert report.records_read == len(df) + len(report.duplicates) + len(report.skipped) == 5
    assert df.attrs["load_report"]["skipped"][0] == {"line": 5, "title": "Orphan Title", "reason": report.skipped[0].reason}
    assert set(report.to_frame().status) == {"skipped"}


# --- whole-file problems -------------------------------------------------------------------------------

def test_invalid_encoding_names_the_line(tmp_path):
    data = listing(("First Paper", ABSTRACT_A)).encode() + b"Caf\xe9 Title\n" + ABSTRACT_B.encode() + b"\n"
    path = write(tmp_path, "c.txt", data)
    with pytest.raises(CorpusFormatError, match=r"c.txt, line 5: byte 0xe9 is not valid utf-8") as info:
        load_corpus(path)
    assert info.value.line == 5
    df = load_corpus(path, encoding="latin-1")
    assert df.title.tolist()[-1] == "Café Title"
    df, report = load_corpus_with_report(path, strict=False)
    assert df.title.tolist() == ["First Paper"] and report.skipped[0].line == 5


def test_empty_file(tmp_path):
    with pytest.raises(CorpusFormatError, match="empty file"):
        load_corpus(write(tmp_path, "c.txt", "  \n\n"))


@pytest.mark.parametrize("name,data", [("c.pdf", b"%PDF-1.4\x00\x01\x02binary"), ("c.xyz", "just some words\nmore words\n")])
def test_unknown_format(tmp_path, name, data):
    with pytest.raises(CorpusFormatError, match="unknown corpus format"):
        load_corpus(write(tmp_path, name, data))


def test_missing_file_and_bad_format_name(tmp_path):
    with pytest.raises(CorpusFormatError, match="no such file"):
        load_corpus(tmp_path / "nope.txt")
    with pytest.raises(ValueError, match="unknown format 'xml'"):
        load_corpus(write(tmp_path, "c.txt", listing(("T", ABSTRACT_A))), format="xml")


# --- duplicates --------------------------------------------------------------------------------------

def test_duplicates_merge_keeping_the_longer_abstract(tmp_path):
    short = "A short abstract about forgetting. It has two sentences and is long enough to count here, yes."
    text = listing(("Overcoming Forgetting", short), ("Other Paper", ABSTRACT_B), ("overcoming  forgetting", ABSTRACT_A))
    df, report = load_corpus_with_report(write(tmp_path, "c.txt", text))
    assert len(df) == 2
    row = df.set_index("title").loc["Overcoming Forgetting"]
    assert row.abstract == ABSTRACT_A and row.line == 3
    assert len(report.duplicates) == 1 and report.duplicates[0].line == 7
    assert "line 3" in report.duplicates[0].reason
    assert report.records_read == 3


# --- BibTeX --------------------------------------------------------------------------------------------

BIB = r"""
@string{icml = "International Conference on Machine Learning"}
@comment{exported by hand}
@article{kirkpatrick2017,
  title = {Overcoming catastrophic forgetting in {N}eural {N}etworks},
  author = {Kirkpatrick, James and others},
  abstract = {Na\"{\i}ve fine-tuning forgets. We show a method \emph{EWC} that works in M\"uller's {\'e}tude
               and costs 5\% more.},
  year = 2017,
}
@inproceedings{second,
  title = "Curriculum {L}earning, " # "Revisited",
  booktitle = icml,
  abstract = "Easy-to-hard ordering, r\'esum\'e: \c{c}a marche {\ss}."
}
"""


def test_bibtex_fields_and_latex_cleaning(tmp_path):
    df = load_corpus(write(tmp_path, "refs.bib", BIB))
    assert df.title.tolist() == ["Overcoming catastrophic forgetting in Neural Networks", "Curriculum Learning, Revisited"]
    assert df.abstract[0] == "Naïve fine-tuning forgets. We show a method EWC that works in Müller's étude and costs 5% more."
    assert df.abstract[1] == "Easy-to-hard ordering, résumé: ça marche ß."
    assert df.line.tolist() == [4, 11]


def test_bibtex_missing_abstract_and_unbalanced_braces(tmp_path):
    missing = BIB + "@misc{third, title = {No Abstract Here}}\n"
    with pytest.raises(CorpusFormatError, match=r"refs.bib, line 16: expected an 'abstract' field"):
        load_corpus(write(tmp_path, "refs.bib", missing))
    broken = "@article{x,\n title = {Unclosed,\n abstract = {y}\n"
    with pytest.raises(CorpusFormatError, match=r"line 2: expected a closing '\}'"):
        load_corpus(write(tmp_path, "broken.bib", broken))
    df, report = load_corpus_with_report(write(tmp_path, "refs2.bib", missing), strict=False)
    assert len(df) == 2 and report.skipped[0].line == 16 and report.records_read == 3


# --- tables ----------------------------------------------------------------------------------------------

def test_csv_zotero_style_columns_and_multiline_fields(tmp_path):
    frame = pd.DataFrame({"Key": ["K1", "K2"], "Title": ["Paper One", "Paper Two"],
                          "Abstract Note": [ABSTRACT_A, "Line one of the abstract.\nLine two of it."]})
    path = tmp_path / "zotero.csv"
    frame.to_csv(path, index=False)
    df = load_corpus(path)
    assert df.title.tolist() == ["Paper One", "Paper Two"]
    assert df.abstract[1] == "Line one of the abstract. Line two of it."
    assert df.line.tolist() == [2, 3]


def test_tsv_json_and_jsonl_written_by_pandas(tmp_path):
    frame = pd.DataFrame({"TITLE": ["Paper One", "Paper Two"], "abstract": [ABSTRACT_A, ABSTRACT_B]})
    frame.to_csv(tmp_path / "c.tsv", sep="\t", index=False)
    frame.to_json(tmp_path / "c.json", orient="records", indent=2)
    frame.to_json(tmp_path / "c.jsonl", orient="records", lines=True)
    for name in ("c.tsv", "c.json", "c.jsonl"):
        df = load_corpus(tmp_path / name)
        assert df.title.tolist() == ["Paper One", "Paper Two"], name
    assert load_corpus(tmp_path / "c.jsonl").line.tolist() == [1, 2]
    assert load_corpus(tmp_path / "c.json").line.tolist() == [2, 6]


def test_table_formats_sniffed_without_extension(tmp_path):
    (tmp_path / "corpus.txt").write_text(json.dumps([{"title": "T", "abstract": ABSTRACT_A}]))
    assert load_corpus(tmp_path / "corpus.txt").title.tolist() == ["T"]
    (tmp_path / "corpus2.txt").write_text("title,abstract\nT2," + json.dumps(ABSTRACT_B) + "\n")
    assert load_corpus(tmp_path / "corpus2.txt").title.tolist() == ["T2"]


def test_table_errors_name_the_line(tmp_path):
    (tmp_path / "c.csv").write_text("name,summary_text\nA,B\n")
    with pytest.raises(CorpusFormatError, match=r"c.csv, line 1: expected columns 'title' and 'abstract'"):
        load_corpus(tmp_path / "c.csv")
    (tmp_path / "d.csv").write_text(f"title,abstract\nGood,{json.dumps(ABSTRACT_A)}\nEmpty Abstract,\n")
    with pytest.raises(CorpusFormatError, match=r"d.csv, line 3: expected an abstract"):
        load_corpus(tmp_path / "d.csv")
    (tmp_path / "e.jsonl").write_text(json.dumps({"title": "A", "abstract": ABSTRACT_A}) + "\n{not json\n")
    with pytest.raises(CorpusFormatError, match=r"e.jsonl, line 2: expected one JSON object"):
        load_corpus(tmp_path / "e.jsonl")
    (tmp_path / "f.json").write_text('[{"title": "A", "abstract": "x"},\n  {"title": "B"}]')
    with pytest.raises(CorpusFormatError, match=r"f.json, line 2: expected keys 'title' and 'abstract'"):
        load_corpus(tmp_path / "f.json")
    (tmp_path / "g.json").write_text('[{"title": "A",\n "abstract": ]')
    with pytest.raises(CorpusFormatError, match=r"g.json, line 2: expected valid JSON"):
        load_corpus(tmp_path / "g.json")


# --- light extraction ---------------------------------------------------------------------------------

def test_code_urls_and_acronyms():
    assert extract_code_urls(ABSTRACT_A) == ["https://github.com/example/ewc-demo"]
    assert extract_code_urls("Our code is available at https://example.org/proj.") == ["https://example.org/proj"]
    assert extract_code_urls("See https://example.org/news for the news.") == []
    assert extract_acronym("APP: Anytime Progressive Pruning") == "APP"
    assert extract_acronym("Vision-R1: Incentivizing Reasoning") == "Vision-R1"
    assert extract_acronym("Reinforcement Learning for Generative AI: A Survey") == ""
    assert extract_acronym("Relational Experience Replay: Continual Learning",
                           "we propose Relational Experience Replay (RER), a method") == "RER"
    assert extract_acronym("Learning to Prompt for Continual Learning") == ""
