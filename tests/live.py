"""The reference libraries the live tests (marked `live`) compare against, or a skip
that says why a library cannot be used here.

`pytest.importorskip` skips only on ImportError; timm imports torchvision, whose
compiled ops fail with a RuntimeError ("operator torchvision::nms does not exist")
when its wheel was built for another torch than the one installed (CI's torch 2.13.0
CPU build beside torchvision 0.28.0 from PyPI). Such a test skips, naming the error.
"""

import importlib

import pytest

WHY = {"timm": "timm needs torchvision, which does not load with the torch installed here"}


def require(name):
    """The module `name`, or a skip naming why it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as error:
        if getattr(error, "name", None) == name.split(".")[0]:
            pytest.skip(f"{name} is not installed", allow_module_level=True)
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    except (RuntimeError, OSError) as error:  # a compiled extension that does not load
        reason = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    try:
        import torch

        torch_version = f"torch {torch.__version__}"
    except ImportError:
        torch_version = "no torch"
    why = WHY.get(name.split(".")[0], f"{name} does not import")
    pytest.skip(f"{why} ({torch_version}; {reason[:200]})", allow_module_level=True)
