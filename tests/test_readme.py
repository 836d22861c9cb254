"""Every fenced code block of README.md runs as a test, so no README line can rot.

Each block runs in a fresh process in a scratch folder that mirrors the
repository (its top-level entries linked, `weights/` copied so nothing a block
writes reaches the checkout): ```python blocks with the repository on the path,
```bash blocks with `bash -e -o pipefail` and `keras-vit`, `python`, `python3`
on PATH meaning this interpreter (`python -m keras_vit`). Training is cut
short by `KERAS_VIT_MAX_EPOCHS=1`, read by `keras_vit.training` (it shortens
the run, never changes what the block does); `TFDS_DATA_DIR` points at an empty
folder, so a tfds data set is never "present by chance".

An HTML comment line directly above a block (several may be stacked) says how
to run it:

    <!-- readme-test: skip (why) -->              not run: network, or data that cannot be here
    <!-- readme-test: expect-error "TEXT" -->    must fail with TEXT in its output, no traceback
    <!-- readme-test: setup NAME[, NAME] -->      run the named SETUPS below first
    <!-- readme-test: slow (why) -->              only with `pytest -m slow`

A block must name its language; ```text (or output, console-output, toml,
json, yaml) blocks are shown, not run.
"""

import dataclasses
import os
import pathlib
import re
import shutil
import subprocess
import sys
import textwrap

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

PYTHON_LANGS = ("python", "py", "python3")
SHELL_LANGS = ("bash", "sh", "shell", "console")
SHOWN_LANGS = ("text", "output", "console-output", "toml", "json", "yaml", "ini")
MARKER = re.compile(r"^\s*<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)")
BLOCK_TIMEOUT_S = {False: 600, True: 1800}  # by slow
ENV = {"KERAS_VIT_MAX_EPOCHS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


@dataclasses.dataclass
class Block:
    line: int  # 1-based line of the opening fence
    lang: str
    code: str
    skip: str | None = None
    expect_error: str | None = None
    setups: tuple = ()
    slow: str | None = None

    @property
    def id(self):
        return f"line{self.line}-{self.lang or 'nolang'}"


def parse_markers(lines, block_line):
    """The `readme-test:` comments stacked directly above a fence, as Block fields."""
    fields = {}
    index = block_line - 2  # 0-based index of the line above the fence
    found = []
    while index >= 0 and MARKER.match(lines[index]):
        found.append((index + 1, MARKER.match(lines[index]).group(1)))
        index -= 1
    for number, text in reversed(found):
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        if word in ("skip", "slow"):
            reason = rest.strip("()").strip()
            if not reason:
                raise ValueError(f"README.md:{number}: `{word}` needs a reason: {word} (why)")
            fields[word] = reason
        elif word == "expect-error":
            match = re.fullmatch(r'"([^"]+)"', rest)
            if not match:
                raise ValueError(f'README.md:{number}: expect-error needs "TEXT", got {rest!r}')
            fields["expect_error"] = match.group(1)
        elif word == "setup":
            names = tuple(n.strip() for n in rest.split(",") if n.strip())
            unknown = [n for n in names if n not in SETUPS]
            if not names or unknown:
                raise ValueError(
                    f"README.md:{number}: setup expects names among "
                    f"{', '.join(sorted(SETUPS))}, got {rest!r}"
                )
            fields["setups"] = fields.get("setups", ()) + names
        else:
            raise ValueError(
                f"README.md:{number}: unknown readme-test marker {word!r} (expected "
                "skip, expect-error, setup or slow)"
            )
    return fields


def parse_readme(text):
    """The fenced blocks of a markdown text, with their markers."""
    lines = text.splitlines()
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence, lang = match.groups()
        start = index
        body = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        if index == len(lines):
            raise ValueError(f"README.md:{start + 1}: the code block is never closed")
        index += 1
        code = textwrap.dedent("\n".join(body)) + "\n"
        blocks.append(Block(start + 1, lang.lower(), code, **parse_markers(lines, start + 1)))
    return blocks


# --- setups: what a block takes as given, made before it runs ------------------
# Each takes the scratch folder and returns Python code run before a python
# block (in the same process), or "" when it only writes files.


def _tiny_datasets(folder):
    """`train_ds`, `val_ds`: a few random 224x224 RGB images in [0, 255], 10 classes."""
    return textwrap.dedent("""\
        import numpy as _np
        import tensorflow as _tf
        _rng = _np.random.default_rng(0)
        def _tiny(n):
            x = _rng.uniform(0, 255, (n, 224, 224, 3)).astype("float32")
            y = _rng.integers(0, 10, n).astype("int32")
            return _tf.data.Dataset.from_tensor_slices((x, y)).batch(n)
        train_ds, val_ds = _tiny(2), _tiny(2)
        """)


def _digit_png(folder):
    """`my_digit.png`: a 7 drawn dark on light, as a user draws one."""
    from PIL import Image, ImageDraw

    image = Image.new("L", (64, 64), 255)
    draw = ImageDraw.Draw(image)
    draw.line([(14, 14), (50, 14), (28, 54)], fill=0, width=7)
    image.save(folder / "my_digit.png")
    return ""


SETUPS = {"tiny_datasets": _tiny_datasets, "digit_png": _digit_png}


def _scratch(tmp_path):
    """A folder that looks like the checkout: entries linked, weights/ copied."""
    work = tmp_path / "work"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name.startswith(".") or entry.name in ("runs", "__pycache__"):
            continue
        if entry.name == "weights":
            shutil.copytree(entry, work / entry.name)
        else:
            (work / entry.name).symlink_to(entry)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("keras-vit", "-m keras_vit"), ("python", ""), ("python3", "")):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" {target} "$@"\n')
        shim.chmod(0o755)
    (tmp_path / "tensorflow_datasets").mkdir()
    env = dict(os.environ, **ENV)
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["TFDS_DATA_DIR"] = str(tmp_path / "tensorflow_datasets")
    return work, env


def run_block(block, tmp_path):
    """Runs one block; returns the CompletedProcess (stdout and stderr merged)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    work, env = _scratch(tmp_path)
    prelude = "".join(SETUPS[name](work) for name in block.setups)
    before = set(os.listdir(work))
    if block.lang in PYTHON_LANGS:
        (tmp_path / "setup.py").write_text(prelude)
        source = tmp_path / f"README_line{block.line}.py"
        source.write_text(block.code)
        runner = (
            "ns = {'__name__': '__main__'}\n"
            f"exec(compile(open({str(tmp_path / 'setup.py')!r}).read(), 'setup', 'exec'), ns)\n"
            f"exec(compile(open({str(source)!r}).read(), {f'README.md block at line {block.line}'!r}, 'exec'), ns)\n"
        )
        command = [sys.executable, "-c", runner]
    elif block.lang in SHELL_LANGS:
        if prelude:
            raise ValueError(f"README.md:{block.line}: a setup with Python code on a shell block")
        source = tmp_path / f"README_line{block.line}.sh"
        source.write_text(block.code)
        command = ["bash", "-e", "-o", "pipefail", str(source)]
    else:
        raise AssertionError(block.lang)
    result = subprocess.run(
        command, cwd=work, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=BLOCK_TIMEOUT_S[bool(block.slow)],
    )
    result.left_in_root = sorted(set(os.listdir(work)) - before - {"runs"})
    return result


def check_block(block, tmp_path):
    if block.skip:
        pytest.skip(f"README.md:{block.line}: {block.skip}")
    if block.lang in SHOWN_LANGS:
        pytest.skip(f"README.md:{block.line}: a ```{block.lang} block is shown, not run")
    assert block.lang in PYTHON_LANGS + SHELL_LANGS, (
        f"README.md:{block.line}: a code block needs a language (python, bash, or text "
        f"for output); got {block.lang!r}"
    )
    result = run_block(block, tmp_path)
    tail = result.stdout[-4000:]
    if block.expect_error:
        assert result.returncode != 0, (
            f"README.md:{block.line}: expected to fail with {block.expect_error!r}; "
            f"it succeeded:\n{tail}"
        )
        assert block.expect_error in result.stdout, (
            f"README.md:{block.line}: failed without {block.expect_error!r}:\n{tail}"
        )
        assert "Traceback" not in result.stdout, f"README.md:{block.line}: a traceback:\n{tail}"
    else:
        assert result.returncode == 0, (
            f"README.md:{block.line}: exit status {result.returncode}:\n{tail}"
        )
    # What a block writes goes under runs/ (git ignores it), not beside the README.
    assert not result.left_in_root, (
        f"README.md:{block.line}: leaves {', '.join(result.left_in_root)} in the "
        "checkout root; write under runs/"
    )


def _readme_params():
    blocks = parse_readme(README.read_text())
    return [
        pytest.param(b, id=b.id, marks=[pytest.mark.slow] if b.slow else [])
        for b in blocks
    ]


@pytest.mark.parametrize("block", _readme_params())
def test_readme_block(block, tmp_path):
    check_block(block, tmp_path)


# --- the harness itself ----------------------------------------------------------

SAMPLE = """\
# t

<!-- readme-test: skip (needs the network) -->
```bash
echo never
```

<!-- readme-test: setup digit_png -->
```bash
test -f my_digit.png && grep -q " -m keras_vit " "$(command -v keras-vit)"
```

<!-- readme-test: expect-error "is not downloaded" -->
```bash
keras-vit train --data cifar10
```

```python
import importlib.util, os, pathlib
assert os.environ["KERAS_VIT_MAX_EPOCHS"] == "1"
assert pathlib.Path("weights/digits/model.keras").is_file()
assert importlib.util.find_spec("keras_vit") is not None
```

```python
raise SystemExit(3)
```

```text
shown only
```
"""


def test_parse_readme_reads_fences_and_markers():
    blocks = parse_readme(SAMPLE)
    assert [(b.line, b.lang) for b in blocks] == [
        (4, "bash"), (9, "bash"), (14, "bash"), (18, "python"), (25, "python"), (29, "text"),
    ]
    assert blocks[0].skip == "needs the network"
    assert blocks[1].setups == ("digit_png",)
    assert blocks[2].expect_error == "is not downloaded"
    assert blocks[2].code == "keras-vit train --data cifar10\n"
    assert blocks[3].skip is blocks[3].expect_error is None and blocks[3].setups == ()


@pytest.mark.parametrize("marker, match", [
    ("<!-- readme-test: skipp (x) -->", "unknown readme-test marker 'skipp'"),
    ("<!-- readme-test: skip -->", "needs a reason"),
    ("<!-- readme-test: setup no_such -->", "setup expects names among"),
    ("<!-- readme-test: expect-error not quoted -->", 'needs "TEXT"'),
])
def test_bad_markers_are_refused_with_their_line(marker, match):
    with pytest.raises(ValueError, match=match):
        parse_readme(f"x\n{marker}\n```bash\ntrue\n```\n")
    with pytest.raises(ValueError, match="never closed"):
        parse_readme("```bash\ntrue\n")


def test_harness_runs_blocks_as_a_user_would(tmp_path):
    blocks = parse_readme(SAMPLE)
    # A shell block with its setup, `keras-vit` on PATH; a python block in the mirror.
    check_block(blocks[1], tmp_path / "a")
    check_block(blocks[3], tmp_path / "b")
    # A failing block fails the test, naming its line.
    with pytest.raises(AssertionError, match="README.md:25: exit status 3"):
        check_block(blocks[4], tmp_path / "c")
    # An expect-error block that succeeds, or fails for another reason, fails.
    ok = dataclasses.replace(blocks[1], expect_error="never printed")
    with pytest.raises(AssertionError, match="expected to fail"):
        check_block(ok, tmp_path / "d")
    wrong = dataclasses.replace(blocks[4], expect_error="is not downloaded")
    with pytest.raises(AssertionError, match="failed without"):
        check_block(wrong, tmp_path / "e")
    # A block that leaves a file beside the README fails; under runs/ it passes.
    litter = dataclasses.replace(blocks[3], code="open('m.keras', 'w').close()\n")
    with pytest.raises(AssertionError, match="README.md:18: leaves m.keras in the checkout"):
        check_block(litter, tmp_path / "f")
    tidy = dataclasses.replace(blocks[3], code="import os; os.makedirs('runs'); "
                               "open('runs/m.keras', 'w').close()\n")
    check_block(tidy, tmp_path / "g")
