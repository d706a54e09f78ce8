"""The column-wise loader gives what the line-by-line loader and the one-string functions give."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from paperlib.corpus import formats, textcols
from paperlib.corpus import reader as corpus
from paperlib.corpus.reader import extract_acronym, extract_code_urls

TRICKY = [
    "", " ", "plain words", "two  spaces", "tab\there", " lead and trail\t", "nbsp\u00a0inside",
    "ideographic\u3000space", "line\u2028separator", "ctrl\x1cchar", "Ünïcödé Tïtlé: ok", "emoji 🙂 in text",
    "CamelCase--and__under_scores", "!!!", "a" * 50 + " b", "é" * 40, "MiXeD  CASE:\u00a0Title",
]


def column(texts):
    return pa.array(texts, pa.large_string())


def test_whitespace_is_what_str_isspace_accepts():
    assert set(textcols.WHITESPACE) == {chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()}


def test_squeeze_space_matches_split_and_join():
    assert textcols.squeeze_space(column(TRICKY)).to_pylist() == [" ".join(s.split()) for s in TRICKY]
    assert textcols.squeeze_space(column(["no odd space at all", "here"])).to_pylist() == ["no odd space at all", "here"]


def test_title_keys_ascii_route_matches_unicode_route():
    squeezed = textcols.squeeze_space(column(TRICKY))
    assert textcols.title_keys(squeezed).to_pylist() == textcols._unicode_keys(squeezed).to_pylist()
    sliced = squeezed.slice(2, 5)  # an array that starts inside its buffers
    assert textcols.title_keys(sliced).to_pylist() == textcols._unicode_keys(sliced).to_pylist()
    assert textcols.title_keys(column(["Ünïcödé Tïtlé: ok"])).to_pylist() == ["unicode title ok"]


# Unicode cases where a per-string rule and Arrow's column kernels could part ways: final sigma,
# dotted capital I, sharp s, ligatures, full-width and mathematical letters, super- and subscripts,
# Roman numerals, combining accents, scripts with spacing marks, zero-width and soft-hyphen characters.
UNICODE_TITLES = [
    "ΣΟΦΟΣ ΛΟΓΟΣ", "İstanbul Iı", "Straße ß", "ﬁne-tuning ﬂow", "Ｆｕｌｌｗｉｄｔｈ ＧＰＴ－４", "x² and H₂O",
    "Ⅻ roman Ⅳ", "Ǆ digraph ǅ", "café", "cafe\u0301", "Devanagari हिन्दी", "Thai ภาษาไทย", "日本語のタイトル",
    "Ωmega ℌilbert ℵ", "emoji 🙂 👍🏽", "zero\u200bwidth", "soft\u00adhyphen", "a–b—c", "“quoted” «guillemets»",
    "Ⓐ circled", "½ half", "Ελληνικά ΆΈΉ", "Việt Nam", "Łódź Øre Æsir", "K (kelvin sign) Å", "١٢٣ arabic digits",
    "𝐁𝐨𝐥𝐝 math", "GPT-4o: A Model", "Vision-R1: Reasoning", "  (Re)thinking   L2  ", "C++ & C#",
]


def test_normalise_title_and_title_keys_agree():
    titles = TRICKY + UNICODE_TITLES
    column = textcols.title_keys(textcols.squeeze_space(textcols.as_column(titles))).to_pylist()
    assert [corpus.normalise_title(t) for t in titles] == column
    assert corpus.normalise_title("  Ünïcödé   Tïtlé: OK!") == "unicode title ok"
    assert corpus.normalise_title("ΣΟΦΟΣ") == "σοφοσ"  # no final sigma: one letter at a time, as Arrow


def test_ids_from_keys_slug_and_hash():
    keys = ["", "a", "one two three four five", "x" * 31 + " y", "é" * 40]
    ids = textcols.ids_from_keys(column(keys)).to_pylist()
    assert [i.rsplit("-", 1)[0] for i in ids] == ["paper", "a", "one-two-three-four", "x" * 31, "é" * 32]
    assert ids[1] == "a-86f7e437"  # sha1("a") starts 86f7e437: ids stay stable across versions


def test_rows_containing_finds_every_row_holding_the_needle():
    texts = ["no link", "http://a http://b", "", "ends with ht", "tp start", "see https://c"]
    rows, counts = textcols.rows_containing(column(texts).slice(0), b"http")
    truth = [i for i, t in enumerate(texts) if "http" in t]
    assert set(truth) <= set(rows.tolist())
    assert dict(zip(rows.tolist(), counts.tolist()))[1] == 2


URL_ABSTRACTS = [
    "Code: https://github.com/a/b.", "Two links https://github.com/a/b and https://gitlab.com/c/d; done.",
    "Our implementation is at https://example.org/x, see it.", "See https://example.org/news for the news.",
    "HTTPS://GitHub.com/UPPER/case and http://www.github.com/w/x", "https://github.com/a/http-lib twice",
    "broken http:/ not a url", "https://github.com/a/b and again https://github.com/a/b.",
    "Source code ſource https://example.org/s here", "no link here",
]


def test_code_url_column_matches_extract_code_urls():
    squeezed = textcols.squeeze_space(column(URL_ABSTRACTS))
    assert corpus._code_url_column(squeezed) == [extract_code_urls(a) for a in squeezed.to_pylist()]


ACRONYM_TITLES = [
    "APP: Anytime Progressive Pruning", "VideoMAE V2: Scaling", "Vision-R1: Reasoning", "lowercase: no",
    "Relational Experience Replay: CL", "A Very Long Head With Many Words Here: x", "X" * 45 + ": too long",
    "Ünï: non-ASCII head", "GPT-4o : spaced colon", "No colon at all", "3D: digits", "Tülu 3: Pushing",
]


def test_acronym_column_matches_extract_acronym():
    abstracts = ["we propose Relational Experience Replay (RER), a method"] * len(ACRONYM_TITLES)
    titles, abstracts = column(ACRONYM_TITLES), column(abstracts)
    assert list(corpus._acronym_column(titles, abstracts)) == [
        extract_acronym(t, a) for t, a in zip(ACRONYM_TITLES, abstracts.to_pylist())]


def load_both(path: Path) -> tuple[pd.DataFrame, pd.DataFrame, bool]:
    """The file loaded by the column-wise reader (if it takes the file) and by the line-by-line reader."""
    results = []
    for fast in (True, False):
        fmt, records, skipped, lossy = formats.read_records(path, encoding="utf-8", strict=True, format=None, fast=fast)
        report = corpus.LoadReport(str(path), fmt)
        columnwise = isinstance(records.titles, pa.Array)
        results.append((corpus._finish(*corpus._columns(records, lossy), report, path, True), columnwise))
    (fast_df, used_columns), (slow_df, _) = results
    return fast_df, slow_df, used_columns


LONG = ("We study a thing at length. It matters a great deal for many reasons that we explain here in detail, "
        "and we release code at https://github.com/ex/thing. Results hold across many settings and seeds. ") * 2


@pytest.mark.parametrize("name, text, columnwise", [
    ("plain", "Get trending papers!\nSubscribeAPP: A Title\n" + LONG + "\nSecond Title\n" + LONG + "\n", True),
    ("crlf-bom-blank", "\ufeffA Title\r\n\r\n" + LONG + "\r\n\r\nB: Title\r\n" + LONG, True),
    ("odd spaces", "A\u00a0 Title\t here \n  " + LONG + "  \nB  Title\nshort abstract\n", True),
    ("whitespace-only lines", "A Title\n \t \n" + LONG + "\n\u3000\nB Title\n" + LONG + "\n", True),
    ("lone CR", "A Title\r" + LONG + "\nB Title\n" + LONG + "\n", False),
    ("title like an abstract", "A Title\n" + LONG + "\n" + LONG + "\nB Title\n" + LONG + "\nC Title\n", False),
])
def test_columnwise_listing_reader_matches_line_by_line(tmp_path, name, text, columnwise):
    path = tmp_path / "corpus.txt"
    path.write_bytes(text.encode("utf-8"))
    if name == "title like an abstract":
        for fast in (True, False):
            with pytest.raises(formats.CorpusFormatError, match="line 3: expected a title line"):
                formats.read_records(path, encoding="utf-8", strict=True, format=None, fast=fast)
        return
    fast_df, slow_df, used_columns = load_both(path)
    assert used_columns == columnwise
    pd.testing.assert_frame_equal(fast_df, slow_df)
    assert fast_df.code_urls.map(len).sum() >= 1


def test_columnwise_reader_matches_on_the_shipped_corpus(corpus_path):
    fast_df, slow_df, used_columns = load_both(Path(corpus_path))
    assert used_columns and len(fast_df) == 257
    pd.testing.assert_frame_equal(fast_df, slow_df)


def test_threaded_and_inline_column_work_agree(corpus_path, monkeypatch):
    from paperlib import load_corpus

    inline = load_corpus(corpus_path)
    monkeypatch.setattr(corpus, "_THREADED_ROWS", 0)  # the second thread, as for corpora of 20k papers and more
    pd.testing.assert_frame_equal(load_corpus(corpus_path), inline)
