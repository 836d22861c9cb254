"""tools/mutate.py's table stays true to the tree, in the default run.

The whole mutation check runs for minutes, outside the default run; a table line
whose pattern no longer matches (the code moved) or whose tests no longer exist
(renamed, or a README block that moved to another line) would only show there,
as STALE or as a baseline that selects nothing. Both happened once each
(issue 20's recipes moved to keras_vit/recipes.py; the README's int8 block moved
from line 688). This reads the table and the files; it runs no mutation.
"""

import os
import re
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import mutate  # noqa: E402

sys.path.pop(0)


def _read(path):
    with open(os.path.join(ROOT, path)) as f:
        return f.read()


@pytest.mark.parametrize("mutation", mutate.MUTATIONS, ids=[m[0] for m in mutate.MUTATIONS])
def test_mutation_pattern_matches_once_and_its_tests_exist(mutation):
    ident, path, pattern, replacement, tests, _ = mutation
    assert os.path.isfile(os.path.join(ROOT, path)), f"{ident}: no file {path}"
    assert mutate.stale(_read(path), pattern) is None, (
        f"{ident}: {mutate.stale(_read(path), pattern)} in {path}")
    assert pattern != replacement, ident
    args = iter(tests)
    for arg in args:
        if arg == "-k":
            expression = next(args)
            line = re.fullmatch(r"line(\d+)", expression)
            if line:  # a README block's id: a fence must open on that line
                lines = _read("README.md").splitlines()
                number = int(line.group(1))
                assert lines[number - 1].startswith("```"), (
                    f"{ident}: README.md line {number} opens no block")
            continue
        if arg == "-m":  # a marker expression
            next(args)
            continue
        if arg.startswith("-"):
            continue
        file, _, node = arg.partition("::")
        assert os.path.isfile(os.path.join(ROOT, file)), f"{ident}: no test file {file}"
        if node:
            name = node.split("[")[0]
            assert re.search(rf"^def {re.escape(name)}\(", _read(file), re.M), (
                f"{ident}: no test {name} in {file}")


def test_mutation_ids_are_unique():
    ids = [m[0] for m in mutate.MUTATIONS]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
