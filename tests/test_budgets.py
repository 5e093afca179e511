"""Time budgets on a 2-core CPU, reported and guarded against runaways.

The target is 60 s per notebook (aim: 30 s) and 30 s for an unchanged rebuild. Times on a shared
machine vary by a factor of two with what else it is doing, so a hard 60-s assertion would fail
at random: the book's "Execution statistics" page (book/status.md, generated from the build's
execution cache) reports every notebook's time, and this test fails only on a runaway, a
notebook over three times its target. Execution times come from the book build itself:
jupyter-cache records how long each notebook took when `make book` executed it, so nothing is
run twice to be timed. Page weight is checked by the browser test.
"""

import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
NOTEBOOKS = sorted((ROOT / "book").glob("**/*.ipynb"))
NOTEBOOK_SECONDS, REBUILD_SECONDS = 60, 30  # targets
RUNAWAY = 3  # fail only past RUNAWAY x the target


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes_within_budget(path):
    from jupyter_cache import get_cache

    if not CACHE.exists():
        pytest.fail("no execution cache: build the book first (`make book`)")
    record = get_cache(CACHE).match_cache_notebook(nbformat.read(path, as_version=4))
    seconds = record.data["execution_seconds"]
    print(f"{path.name}: executed in {seconds:.1f} s (target {NOTEBOOK_SECONDS} s)")
    assert seconds <= RUNAWAY * NOTEBOOK_SECONDS, f"{path.name}: a runaway, {seconds:.0f} s"


def test_unchanged_rebuild_within_budget():
    if not (ROOT / "_build" / "html" / "index.html").exists():
        pytest.fail("no built book: build it first (`make book`)")
    jb = Path(sys.executable).with_name("jupyter-book")
    start = time.perf_counter()
    subprocess.run([str(jb), "build", "-W", "-n", "--keep-going", "."], cwd=ROOT, check=True,
                   capture_output=True)
    seconds = time.perf_counter() - start
    print(f"unchanged rebuild: {seconds:.1f} s (target {REBUILD_SECONDS} s)")
    assert seconds <= RUNAWAY * REBUILD_SECONDS
