"""Committed notebooks are seeded, carry checked numbers and no images (see tests/nbtools.py).

nbval itself runs every notebook in book/ (pytest collects them with --nbval-lax); this module
checks what nbval cannot: that there is something for it to compare and nothing that should
only come from the build.
"""

from pathlib import Path

import nbformat
import pytest
from nbtools import problems

BOOK = Path(__file__).resolve().parents[1] / "book"
NOTEBOOKS = sorted(BOOK.glob("*.ipynb")) + sorted(BOOK.glob("*/*.ipynb"))


def test_there_are_notebooks():
    assert NOTEBOOKS, "book/ holds no notebook"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_committed_notebook_is_clean(path):
    assert problems(nbformat.read(path, as_version=4), path.name) == []
