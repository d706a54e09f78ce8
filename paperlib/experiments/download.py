"""All network and file I/O of the data sets: hash-checked downloads with atomic writes and retries, and IDX files.

A download streams into a temporary file beside its destination, checks every hash of the
checksum table, and only then is renamed into place, so the cache never holds a partial or
corrupt file. Dropped connections and server errors are retried; a checksum mismatch is not
(the file is deleted and a `DatasetError` says which hash failed).
"""
from __future__ import annotations

import gzip
import hashlib
import http.client
import os
import socket
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
from tqdm.auto import tqdm

from paperlib.errors import DatasetError

# IDX element types: code -> numpy big-endian dtype (LeCun's format description).
IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

_RETRYABLE = (urllib.error.URLError, http.client.HTTPException, ConnectionError, socket.timeout, TimeoutError)


class _Incomplete(Exception):
    """The server closed the connection before sending every byte it announced."""


def _fetch_once(url: str, part: Path, *, timeout: float, progress: bool, hashes: dict) -> None:
    with urllib.request.urlopen(url, timeout=timeout) as resp, open(part, "wb") as out:
        total = resp.headers.get("Content-Length")
        total = int(total) if total is not None else None
        got = 0
        with tqdm(total=total, unit="B", unit_scale=True, desc=Path(url).name, disable=not progress, leave=False) as bar:
            while True:
                try:
                    block = resp.read(1 << 16)
                except http.client.IncompleteRead as exc:
                    raise _Incomplete(f"connection dropped after {got + len(exc.partial)} bytes") from exc
                if not block:
                    break
                out.write(block)
                for h in hashes.values():
                    h.update(block)
                got += len(block)
                bar.update(len(block))
        if total is not None and got < total:
            raise _Incomplete(f"connection dropped after {got} of {total} bytes")
        out.flush()
        os.fsync(out.fileno())


def download(
    urls: str | Sequence[str],
    dest: str | Path,
    *,
    checksums: Mapping[str, str],
    retries: int = 3,
    backoff: float = 0.5,
    timeout: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download the first URL that works into `dest`, checking `checksums` ({"sha256": hex, "md5": hex, ...}).

    Each URL is tried `retries` times (sleeping backoff, 2*backoff, ...) on dropped connections
    and server errors; a 404 moves on to the next URL. Raises `DatasetError` when every URL
    fails or a checksum does not match; in both cases nothing is left at `dest`.
    """
    if not checksums:
        raise ValueError("download needs at least one checksum (e.g. {'sha256': ...})")
    urls = [urls] if isinstance(urls, str) else list(urls)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures = []
    for url in urls:
        for attempt in range(retries):
            fd, name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
            os.close(fd)
            part = Path(name)
            hashes = {a: hashlib.new(a) for a in checksums}
            try:
                _fetch_once(url, part, timeout=timeout, progress=progress, hashes=hashes)
            except urllib.error.HTTPError as exc:
                part.unlink(missing_ok=True)
                failures.append(f"{url}: HTTP {exc.code}")
                if exc.code < 500:
                    break
            except (_Incomplete, *_RETRYABLE) as exc:
                part.unlink(missing_ok=True)
                failures.append(f"{url}: {exc}")
            except BaseException:
                part.unlink(missing_ok=True)
                raise
            else:
                for algo, expected in checksums.items():
                    actual = hashes[algo].hexdigest()
                    if actual != expected.lower():
                        part.unlink(missing_ok=True)
                        raise DatasetError(
                            dest, None,
                            f"checksum mismatch for {url}: {algo} is {actual}, expected {expected}; "
                            "the file was deleted (a wrong mirror, or a corrupt transfer)",
                        )
                os.replace(part, dest)
                return dest
            if attempt + 1 < retries:
                time.sleep(backoff * 2**attempt)
    raise DatasetError(dest, None, "download failed: " + "; ".join(failures))


def read_idx(path: str | Path, *, expected_ndim: int | None = None) -> np.ndarray:
    """Read an IDX file (gzipped or raw) into a numpy array, checking its magic number and size.

    Raises `DatasetError` for a bad magic number, an unknown element type, a wrong number of
    dimensions, a corrupt gzip stream or a body shorter or longer than the header announces.
    """
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as exc:
            raise DatasetError(path, None, f"corrupt or truncated gzip stream ({exc})") from exc
    if len(raw) < 4:
        raise DatasetError(path, None, f"too short for an IDX header ({len(raw)} bytes)")
    if raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_TYPES:
        raise DatasetError(path, None, f"bad IDX magic number 0x{raw[:4].hex()}: expected 0x0000 then a type code and a rank")
    ndim = raw[3]
    if ndim == 0 or (expected_ndim is not None and ndim != expected_ndim):
        raise DatasetError(path, None, f"IDX file has {ndim} dimensions, expected {expected_ndim or 'at least 1'}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DatasetError(path, None, "truncated IDX header")
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    dtype = np.dtype(IDX_TYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = len(raw) - header
    if body < expected:
        raise DatasetError(path, None, f"truncated IDX file: {body} bytes of data, the header {dims} needs {expected}")
    if body > expected:
        raise DatasetError(path, None, f"IDX file has {body - expected} bytes after the data its header {dims} announces")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> Path:
    """Write an array as an IDX file (gzipped when the name ends in .gz); the inverse of `read_idx`."""
    path = Path(path)
    codes = {np.dtype(v).newbyteorder("="): k for k, v in IDX_TYPES.items()}
    dt = array.dtype.newbyteorder("=")
    if dt not in codes:
        raise ValueError(f"IDX cannot hold dtype {array.dtype}")
    code = codes[dt]
    head = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = head + np.ascontiguousarray(array, dtype=IDX_TYPES[code]).tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data)
    tmp = path.with_name(f".{path.name}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path
