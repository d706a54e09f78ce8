"""The core install (no extras) reads, tags and relates a corpus without torch or JupyterLab."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def core_venv(tmp_path_factory):
    venv = tmp_path_factory.mktemp("core-venv")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    out = subprocess.run(pip + [str(ROOT)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-4000:]
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(venv / "bin" / "paperlib"), *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_core_install_has_no_heavy_packages(core_venv):
    code = ("import importlib.util as u; "
            "print([m for m in ('torch', 'jupyterlab', 'papermill', 'ipywidgets', 'distributed') if u.find_spec(m)])")
    out = subprocess.run([str(core_venv / "bin" / "python"), "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_core_parse_tag_similar(core_venv, tmp_path):
    corpus = ROOT / "data" / "corpus" / "training-paradigms.txt"
    parsed = _run(core_venv, "parse", str(corpus), "--out", str(tmp_path / "papers.csv"), cwd=tmp_path)
    assert parsed.returncode == 0, parsed.stderr
    assert (tmp_path / "papers.csv").stat().st_size > 10_000
    tagged = _run(core_venv, "tag", str(corpus), "--out", str(tmp_path / "tagged.parquet"), cwd=tmp_path)
    assert tagged.returncode == 0, tagged.stderr
    assert "tagged 257 papers" in tagged.stdout
    similar = _run(core_venv, "similar", str(corpus), "Editing Models with Task Arithmetic", "-k", "3", cwd=tmp_path)
    assert similar.returncode == 0, similar.stderr
    assert similar.stdout.count("\n") >= 4
