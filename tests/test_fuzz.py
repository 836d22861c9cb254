"""Hostile files: mutated checkpoints of every format, .keras models and images.

Every case must end in a loaded model (an image read) or one line from a
KerasViTError / OSError naming the file, within 60 s and 4 GB. The cases run in
worker processes under RLIMIT_AS; a worker that dies mid-case (memory) or runs
past its timeout fails the case it was on. Short by default (a few dozen cases);
`-m slow` runs 1,000 (`python tests/test_fuzz.py 1000` prints the tally).
"""

import collections
import json
import os
import resource
import subprocess
import sys

import pytest

from tests.fuzz_cases import CASE_SECONDS, make_cases

MEMORY_BYTES = 4 * 2**30
WORKER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_cases.py")


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES))


def run_cases(cases, per_worker):
    """Outcome dicts for `cases`, read by workers of `per_worker` cases each."""
    results = []
    pending = list(cases)
    while pending:
        batch, pending = pending[:per_worker], pending[per_worker:]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            done = subprocess.run(
                [sys.executable, WORKER, *batch], capture_output=True, text=True, env=env,
                preexec_fn=_limit_memory, timeout=60 + CASE_SECONDS * len(batch))
            out, err = done.stdout, done.stderr
        except subprocess.TimeoutExpired as expired:
            out, err = expired.stdout or "", "timeout"
            out = out.decode() if isinstance(out, bytes) else out
        lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        finished = {r["case"] for r in lines if "outcome" in r}
        results.extend(r for r in lines if "outcome" in r)
        started = [r["start"] for r in lines if "start" in r and r["start"] not in finished]
        if started or len(finished) < len(batch):  # died on a case: fail it, rerun the rest
            dead = started[0] if started else batch[len(finished)]
            meta = json.load(open(os.path.join(dead, "case.json")))
            results.append({"case": dead, "format": meta["format"], "how": meta["how"],
                            "outcome": "died", "detail": err[-600:]})
            pending = [c for c in batch if c not in finished and c != dead] + pending
    return results


def check(results):
    tally = collections.Counter((r["format"], r["outcome"]) for r in results)
    failures = [r for r in results if r["outcome"] not in ("ok", "clean")]
    shown = "\n".join(f"{r['case']} [{r['how']}] {r['outcome']}: {r['detail']}"
                      for r in failures[:10])
    assert not failures, f"{len(failures)} of {len(results)} cases failed:\n{shown}"
    return tally


def test_fuzz_short(tmp_path):
    cases = make_cases(str(tmp_path), 35, seed=1)
    results = run_cases(cases, per_worker=len(cases))
    tally = check(results)
    assert sum(n for (_, o), n in tally.items() if o == "clean") >= 10  # the mutations bite


@pytest.mark.slow
def test_fuzz_long(tmp_path):
    check(run_cases(make_cases(str(tmp_path), 1000, seed=2), per_worker=50))


if __name__ == "__main__":
    import tempfile
    import time

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with tempfile.TemporaryDirectory() as folder:
        start = time.time()
        results = run_cases(make_cases(folder, count, seed=2), per_worker=50)
        print(json.dumps({"seconds": round(time.time() - start),
                          "tally": {f"{f} {o}": n for (f, o), n in sorted(
                              collections.Counter((r["format"], r["outcome"])
                                                  for r in results).items())}}, indent=1))
        for r in results:
            if r["outcome"] not in ("ok", "clean"):
                print(r["how"], r["outcome"], r["detail"][-300:].replace("\n", " | "))
