"""Data sets: the IDX reader, hash-checked downloads against a loopback HTTP server, and the loaders."""
from __future__ import annotations

import hashlib
import http.server
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlib.experiments.datasets import CHECKSUMS, IDX_FILES, fetch_idx_files, load_dataset, read_idx_folder
from paperlib.experiments.download import download, read_idx, write_idx
from paperlib.errors import DatasetError


def _tiny_mnist(folder: Path, *, n_train=12, n_test=5, gz=True) -> dict[str, bytes]:
    """Write four small IDX files in MNIST layout; returns their bytes by file name."""
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for stem, arr in arrays.items():
        name = stem + (".gz" if gz else "")
        out[name] = write_idx(folder / name, arr).read_bytes()
    return out


# --- IDX reader -------------------------------------------------------------------------


def test_idx_round_trip_raw_and_gzip(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a.idx", "a.idx.gz"):
        back = read_idx(write_idx(tmp_path / name, a))
        assert back.shape == (2, 3, 4) and back.dtype == np.uint8
        np.testing.assert_array_equal(back, a)
    f = np.array([1.5, -2.0], dtype=np.float32)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "f.idx", f)), f)


def test_idx_header_is_lecun_format(tmp_path):
    # magic 0x00000803: unsigned bytes, 3 dimensions; then the sizes as big-endian int32.
    raw = (tmp_path / "x.idx")
    write_idx(raw, np.zeros((2, 28, 28), np.uint8))
    head = raw.read_bytes()[:16]
    assert head == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 28, 0, 0, 0, 28])


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda b: b"\x01\x02" + b[2:], "magic"),
        (lambda b: b[:2] + b"\x07" + b[3:], "magic"),
        (lambda b: b[:-10], "truncated"),
        (lambda b: b + b"xx", "after the data"),
        (lambda b: b[:6], "truncated IDX header"),
    ],
)
def test_idx_reader_rejects_corrupt_files(tmp_path, mutate, message):
    good = write_idx(tmp_path / "g.idx", np.zeros((3, 4, 4), np.uint8)).read_bytes()
    bad = tmp_path / "bad.idx"
    bad.write_bytes(mutate(good))
    with pytest.raises(DatasetError, match=message):
        read_idx(bad)


def test_idx_reader_rejects_truncated_gzip_and_wrong_rank(tmp_path):
    gz = write_idx(tmp_path / "g.idx.gz", np.zeros((3, 4, 4), np.uint8)).read_bytes()
    (tmp_path / "cut.gz").write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DatasetError, match="gzip"):
        read_idx(tmp_path / "cut.gz")
    with pytest.raises(DatasetError, match="dimensions"):
        read_idx(tmp_path / "g.idx.gz", expected_ndim=1)


def test_read_idx_folder_scales_and_flattens(tmp_path):
    _tiny_mnist(tmp_path, gz=False)
    ds = read_idx_folder("mnist", tmp_path)
    assert ds.x_train.shape == (12, 784) and ds.x_test.shape == (5, 784)
    assert ds.x_train.dtype == torch.float32 and ds.y_train.dtype == torch.int64
    assert 0.0 <= ds.x_train.min() and ds.x_train.max() <= 1.0
    assert ds.image_shape == (28, 28)


def test_read_idx_folder_names_missing_files_and_count_mismatch(tmp_path):
    with pytest.raises(DatasetError, match="missing IDX files"):
        read_idx_folder("mnist", tmp_path)
    _tiny_mnist(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.zeros(4, np.uint8))
    with pytest.raises(DatasetError, match="5 images but 4 labels"):
        read_idx_folder("mnist", tmp_path)


# --- downloads against a loopback server ----------------------------------------------


class _Server:
    """A loopback HTTP server: `files` by path; `drops[path]` times it sends half a file then closes."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.drops: dict[str, int] = {}
        self.hits: dict[str, int] = {}
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                path = self.path
                owner.hits[path] = owner.hits.get(path, 0) + 1
                body = owner.files.get(path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if owner.drops.get(path, 0) > 0:
                    owner.drops[path] -= 1
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    with _Server() as s:
        yield s


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def test_download_writes_file_with_matching_checksum(server, tmp_path):
    server.files["/f.bin"] = b"hello" * 1000
    out = download(server.url + "/f.bin", tmp_path / "f.bin", checksums={"sha256": _sha(b"hello" * 1000)}, progress=False)
    assert out.read_bytes() == b"hello" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_checksum_mismatch_leaves_nothing_and_says_so(server, tmp_path):
    server.files["/f.bin"] = b"evil bytes"
    with pytest.raises(DatasetError, match="checksum mismatch.*sha256"):
        download(server.url + "/f.bin", tmp_path / "f.bin", checksums={"sha256": _sha(b"good bytes")}, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_is_retried(server, tmp_path):
    body = bytes(range(256)) * 200
    server.files["/f.bin"] = body
    server.drops["/f.bin"] = 1
    out = download(server.url + "/f.bin", tmp_path / "f.bin", checksums={"sha256": _sha(body)}, backoff=0.01, progress=False)
    assert out.read_bytes() == body
    assert server.hits["/f.bin"] == 2
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_connection_that_keeps_dropping_fails_cleanly(server, tmp_path):
    body = bytes(range(256)) * 200
    server.files["/f.bin"] = body
    server.drops["/f.bin"] = 99
    with pytest.raises(DatasetError, match="download failed.*dropped"):
        download(server.url + "/f.bin", tmp_path / "f.bin", checksums={"sha256": _sha(body)}, retries=2, backoff=0.01, progress=False)
    assert server.hits["/f.bin"] == 2
    assert list(tmp_path.iterdir()) == []


def test_missing_file_falls_through_to_next_mirror(server, tmp_path):
    server.files["/b/f.bin"] = b"data"
    out = download([server.url + "/a/f.bin", server.url + "/b/f.bin"], tmp_path / "f.bin",
                   checksums={"md5": hashlib.md5(b"data").hexdigest()}, progress=False)
    assert out.read_bytes() == b"data"
    assert server.hits["/a/f.bin"] == 1  # a 404 is not retried


def test_load_dataset_downloads_mnist_once_into_the_cache(server, tmp_path, monkeypatch):
    files = _tiny_mnist(tmp_path / "served")
    for name, body in files.items():
        server.files["/mirror/" + name] = body
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "cache"))
    sums = {name: {"sha256": _sha(body)} for name, body in files.items()}
    fetch_idx_files("mnist", base_url=server.url + "/mirror", checksums=sums, progress=False)
    ds = load_dataset("mnist", download=False)
    assert ds.x_train.shape == (12, 784) and ds.y_test.tolist() == [0, 1, 2, 3, 4]
    hits = dict(server.hits)
    fetch_idx_files("mnist", base_url=server.url + "/mirror", checksums=sums, progress=False)
    assert server.hits == hits  # cached files are not fetched again


def test_load_dataset_rejects_a_mirror_serving_other_files(server, tmp_path, monkeypatch):
    # The tiny files do not match the published MNIST checksums: nothing may land in the cache.
    for name, body in _tiny_mnist(tmp_path / "served").items():
        server.files["/" + name] = body
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path / "cache"))
    monkeypatch.setenv("PAPERLIB_MNIST_URL", server.url)
    monkeypatch.setattr("paperlib.experiments.datasets.MIRRORS", {"mnist": (), "fashion-mnist": ()})
    with pytest.raises(DatasetError, match="checksum mismatch.*md5"):
        load_dataset("mnist")
    assert list((tmp_path / "cache" / "mnist").glob("*")) == []


def test_load_dataset_without_download_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    monkeypatch.setattr("paperlib.experiments.datasets.SYSTEM_DIRS", {})
    with pytest.raises(DatasetError, match="download=False"):
        load_dataset("mnist", download=False)


def test_checksum_table_lists_every_file():
    for name in ("mnist", "fashion-mnist"):
        assert sorted(CHECKSUMS[name]) == sorted(s + ".gz" for s in IDX_FILES)
        for sums in CHECKSUMS[name].values():
            assert all(len(v) == {"md5": 32, "sha256": 64}[k] for k, v in sums.items())


# --- the named data sets ----------------------------------------------------------------


def test_embedded_datasets_are_tensors_in_unit_range():
    for name, n_feat in (("digits", 64), ("mnist-5k", 784)):
        ds = load_dataset(name)
        assert ds.n_features == n_feat and ds.n_classes == 10
        assert ds.x_train.min() >= 0 and ds.x_train.max() <= 1
        assert load_dataset(name).y_test.tolist() == ds.y_test.tolist()  # fixed split


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz").exists(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_fashion_mnist_found_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PAPERLIB_DATA", str(tmp_path))
    ds = load_dataset("fashion-mnist", download=False)
    assert ds.x_train.shape == (60000, 784) and ds.x_test.shape == (10000, 784)
    assert sorted(torch.unique(ds.y_test).tolist()) == list(range(10))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_dataset("cifar")
