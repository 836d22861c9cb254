"""The wheel carries every subpackage and the shipped weights."""

import os
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_pyproject():
    tomllib = pytest.importorskip("tomllib")
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(path.relative_to(ROOT).parts[:-1])
        for path in (ROOT / "keras_vit").rglob("__init__.py")
    }
    assert found <= listed, f"add to pyproject's packages: {sorted(found - listed)}"
    assert "keras_vit.weights" in listed and os.path.isdir(ROOT / "weights")
