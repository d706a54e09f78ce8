"""Text columns as Arrow arrays: the per-paper string work of loading a corpus, done column-wise.

Each function gives what its one-string Python counterpart gives on every string (the tests
compare them), without a Python loop over hundreds of thousands of papers.
"""
from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# Every character str.isspace() accepts: what str.split() and str.strip() treat as whitespace.
WHITESPACE = ("\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006"
              "\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000")
# The same characters as an RE2 character class.
WHITESPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):x}}}" for c in WHITESPACE) + "]"
_NOT_PLAIN_SPACE = WHITESPACE_CLASS.replace("\\x{20}", "")
_ODD_SPACE = WHITESPACE_CLASS + "{2,}|" + _NOT_PLAIN_SPACE  # a run, or one whitespace character that is not " "


def as_column(texts) -> pa.Array:
    """A large_string Arrow array of `texts` (a list of str or an Arrow string array).

    Built with the system allocator, which can reuse the memory the readers' Python strings
    free (Arrow's own pool cannot), so the column does not add to the peak on top of them.
    """
    if isinstance(texts, pa.Array):
        return texts if texts.type == pa.large_string() else texts.cast(pa.large_string())
    return pa.array(texts, pa.large_string(), memory_pool=pa.system_memory_pool())


def squeeze_space(col: pa.Array) -> pa.Array:
    """`" ".join(s.split())` for every string: ends trimmed, each run of whitespace made one space."""
    if _may_need_trim(col):
        col = pc.utf8_trim(col, WHITESPACE)
    if len(col) and _may_have_odd_space(col):
        col = pc.replace_substring_regex(col, _ODD_SPACE, " ")
    return col


def _may_need_trim(col: pa.Array) -> bool:
    """False when every string starts and ends with a visible ASCII character (trimming copies the column)."""
    raw = _used_bytes(col)
    if len(raw) == 0:
        return False
    offsets = _offsets(col) - _offsets(col)[0]
    filled = offsets[:-1] < offsets[1:]
    ends = np.concatenate((raw[offsets[:-1][filled]], raw[offsets[1:][filled] - 1]))
    return bool(np.any((ends <= 32) | (ends >= 127)))


def _may_have_odd_space(col: pa.Array) -> bool:
    """False when no string holds two spaces in a row or any whitespace but the plain space.

    Checked on the column's bytes in chunks (control bytes, a double space), then only the
    strings holding non-ASCII characters (where the Unicode spaces live) through a regex.
    """
    raw = _used_bytes(col)
    wide = False
    for at in range(0, len(raw), _CHUNK):
        chunk = raw[at: at + _CHUNK + 1]
        if np.any(chunk < 32):
            return True
        space = chunk == 32
        if np.any(space[:-1] & space[1:]):
            return True
        wide = wide or bool(np.any(chunk >= 128))
    if not wide:
        return False
    wide_rows = col.filter(pc.invert(pc.string_is_ascii(col)))
    return bool(pc.any(pc.match_substring_regex(wide_rows, _NOT_PLAIN_SPACE)).as_py())


_CHUNK = 1 << 22


def _offsets(col: pa.Array) -> np.ndarray:
    """The value offsets of a large_string array (its slice of them)."""
    return np.frombuffer(col.buffers()[1], np.int64)[col.offset: col.offset + len(col) + 1]


def _used_bytes(col: pa.Array) -> np.ndarray:
    """The bytes the strings of a large_string array span (a buffer may hold more)."""
    if len(col) == 0 or col.buffers()[2] is None:
        return np.empty(0, np.uint8)
    offsets = _offsets(col)
    return np.frombuffer(col.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]


def rows_containing(col: pa.Array, needle: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the strings that may contain `needle`, and how many times: one byte search over the column.

    A match across two neighbouring strings can add a row or a count; callers check each row
    they get, so rows and counts are upper bounds, never missing an occurrence. The search is
    numpy comparisons in chunks, which release the GIL.
    """
    raw = _used_bytes(col)
    if len(raw) == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    pattern, k, hits = np.frombuffer(needle, np.uint8), len(needle), []
    for at in range(0, len(raw), _CHUNK):
        chunk = raw[at: at + _CHUNK + k - 1]
        n = len(chunk) - k + 1
        if n <= 0:
            break
        found = chunk[:n] == pattern[0]
        for j in range(1, k):
            found &= chunk[j: n + j] == pattern[j]
        hits.append(np.flatnonzero(found) + at)
    if not hits:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    offsets = _offsets(col)
    return np.unique(np.searchsorted(offsets - offsets[0], np.concatenate(hits), side="right") - 1, return_counts=True)


def title_keys(titles: pa.Array) -> pa.Array:
    """`reader.normalise_title` of every (whitespace-squeezed) title: lower case, accents dropped,
    punctuation runs made one space.

    ASCII titles (most of them) go through a byte table; the others through Unicode regexes.
    """
    keys = _ascii_keys(titles)
    ascii_rows = pc.string_is_ascii(titles)
    if pc.all(ascii_rows).as_py() is False:
        wide = pc.invert(ascii_rows)
        keys = pc.replace_with_mask(keys, wide, _unicode_keys(titles.filter(wide)))
    return keys


_KEY_BYTE = np.full(256, ord(" "), np.uint8)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789_":
    _KEY_BYTE[_c] = _c
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _KEY_BYTE[_c] = _c + 32


def _ascii_keys(titles: pa.Array) -> pa.Array:
    """`_unicode_keys` for ASCII strings, on the bytes: map through a table, drop leading and repeated spaces."""
    if len(titles) == 0 or titles.buffers()[2] is None:
        return pc.cast(titles, pa.large_string())
    offsets = np.frombuffer(titles.buffers()[1], np.int64)[titles.offset: titles.offset + len(titles) + 1]
    raw = np.frombuffer(titles.buffers()[2], np.uint8)[offsets[0]: offsets[-1]]
    offsets = offsets - offsets[0]
    mapped = _KEY_BYTE[raw]
    space = mapped == ord(" ")
    after_space = np.empty_like(space)
    after_space[:1] = True
    after_space[1:] = space[:-1]
    after_space[offsets[:-1][offsets[:-1] < len(raw)]] = True  # a string's first byte
    keep = ~(space & after_space)
    new_offsets = np.concatenate(([0], np.cumsum(keep)))[offsets]
    keys = pa.Array.from_buffers(pa.large_string(), len(titles),
                                 [None, pa.py_buffer(new_offsets.astype(np.int64)), pa.py_buffer(mapped[keep])])
    return pc.utf8_trim(keys, " ")


def _unicode_keys(titles: pa.Array) -> pa.Array:
    keys = pc.utf8_lower(titles)
    keys = pc.replace_substring_regex(pc.utf8_normalize(keys, "NFKD"), r"\p{Mn}+", "")
    return pc.utf8_trim_whitespace(pc.replace_substring_regex(keys, r"[^\p{L}\p{N}_]+", " "))


_HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_DASH = pa.scalar("-", pa.large_string())


def ids_from_keys(keys: pa.Array) -> pa.Array:
    """Stable paper ids: up to four words of the key as a slug (32 characters at most) plus 8 hex of its SHA-1.

    Only the hashing loops in Python; the slug and the hex digits are built per column.
    """
    words = pc.list_slice(pc.split_pattern(keys, " ", max_splits=4), 0, 4)
    slugs = pc.utf8_trim(pc.utf8_slice_codeunits(pc.binary_join(words, _DASH), 0, 32), "-")
    slugs = pc.if_else(pc.equal(pc.binary_length(slugs), 0), pa.scalar("paper", pa.large_string()), slugs)
    sha1 = hashlib.sha1
    digests = b"".join([sha1(key).digest() for key in keys.cast(pa.large_binary()).to_pylist()])
    first4 = np.frombuffer(digests, np.uint8).reshape(-1, 20)[:, :4]
    hexed = np.empty((len(first4), 8), np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = _HEX[first4 >> 4], _HEX[first4 & 15]
    offsets = np.arange(0, 8 * len(first4) + 1, 8, dtype=np.int64)
    hexes = pa.Array.from_buffers(pa.large_string(), len(first4), [None, pa.py_buffer(offsets), pa.py_buffer(hexed)])
    return pc.binary_join_element_wise(slugs, hexes, _DASH)
