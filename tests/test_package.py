"""The package's top level: every advertised name resolves, and importing it stays cheap."""
from __future__ import annotations

import subprocess
import sys

import pytest

import paperlib


@pytest.mark.parametrize("name", paperlib.__all__)
def test_every_exported_name_resolves(name):
    assert getattr(paperlib, name) is not None


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        paperlib.nope


def test_import_does_not_load_torch_or_sklearn():
    code = "import sys, paperlib; print(sorted(m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
