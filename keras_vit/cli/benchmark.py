"""`keras-vit benchmark`: a thin entry to the harness in the checkout's benchmarks/.

The harness (driver, workers, report) is a developer's tool and is not
installed with the wheel; from a source checkout the command finds it beside
the package. Without it, `keras-vit benchmark` says how to get it. Only the
standard library is imported here, and the harness imports no framework
either, so `keras-vit --help` stays fast.
"""

import importlib
import pathlib
import sys

from keras_vit.cli.common import CommandError

# benchmarks/ of the source checkout this keras_vit was imported from (an editable
# install, or `python -m keras_vit` in the checkout).
CHECKOUT = pathlib.Path(__file__).resolve().parents[2]
HOW_TO_GET = (
    "the benchmark harness is not installed with the package: it lives in benchmarks/ "
    "of a source checkout; run `keras-vit benchmark` from the checkout's root (where "
    "you ran `pip install \".[tf]\"`), or `python -m benchmarks.driver` there"
)


def _checkout():
    """The source checkout holding the harness: the package's own, else the current
    folder when it is a keras-vit checkout (after a non-editable `pip install ".[tf]"`,
    the README's install, the package lives in site-packages, the harness here)."""
    for root in (CHECKOUT, pathlib.Path.cwd()):
        pyproject = root / "pyproject.toml"
        if (root / "benchmarks" / "driver.py").is_file() and pyproject.is_file() and \
                'name = "keras-vit"' in pyproject.read_text(errors="replace"):
            return root.resolve()
    return None


def _driver():
    """The checkout's benchmarks.driver module, or None outside a checkout."""
    checkout = _checkout()
    if checkout is None:
        return None
    harness = checkout / "benchmarks" / "driver.py"
    if str(checkout) not in sys.path:
        sys.path.insert(0, str(checkout))
    driver = importlib.import_module("benchmarks.driver")
    if pathlib.Path(driver.__file__).resolve() != harness:
        raise CommandError(
            f"another `benchmarks` package ({driver.__file__}) shadows {harness.parent}"
        )
    return driver


def add_benchmark(sub):
    driver = _driver()
    # Without the harness its options are unknown: every word (--help included)
    # is taken as given, and running says how to get the harness.
    missing = {} if driver else dict(prefix_chars="\0", add_help=False)
    p = sub.add_parser(
        "benchmark",
        help="Throughput and memory of keras_vit against keras-hub, ZeroModels and timm.",
        description="Interleaved, repeated runs of keras_vit and its peers, each in its "
        "own process; prints a markdown table of medians and ratios. Peers come from "
        "benchmarks/make_peer_envs.sh (a missing one is a 'skipped' row). Needs a "
        "source checkout.",
        **missing,
    )
    if driver is None:
        p.add_argument("arguments", nargs="*")
    else:
        driver.add_arguments(p)

    def run(args):
        if driver is None:
            raise CommandError(HOW_TO_GET)
        return driver.main(args)

    p.set_defaults(run=run)
