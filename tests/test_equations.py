"""The equation registry (book/equations/*.yml, read by lecturekit.equations) cannot rot.

It must cover every display equation of the slides, in slide order; every function it names must
import, every test it names must exist, and every anchor must resolve in the built HTML. The
index page renders the registry at build time (lecturekit.sphinxext).
"""

import ast
import importlib
import os
import re
from pathlib import Path

import pytest
import yaml

import lecturekit.equations as eqs

ROOT = Path(os.environ.get("LK_REPO_ROOT") or Path(__file__).resolve().parents[1]).resolve()
SLIDES = sorted((ROOT.parent / "shared" / "slides").glob("*.txt"))
ENTRIES = eqs.load(ROOT)
IDS = [f"slide-eq-{e['slide']}" for e in ENTRIES]
HTML = ROOT / "_build" / "html"


def toc_docnames():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    return set(re.findall(r"file: (\S+)", (ROOT / "_toc.yml").read_text())) | {toc["root"]}


def test_registry_covers_every_display_equation_of_the_slides_in_order():
    if not SLIDES:
        pytest.skip(f"no slide text beside the repository ({ROOT.parent / 'shared' / 'slides'})")
    slide = [eq for path in SLIDES for eq in eqs.slide_equations(path.read_text("utf-8"))]
    assert [e["slide"] for e in ENTRIES] == list(range(1, len(slide) + 1)), "slide ordinals"
    wrong = [
        f"slide equation {e['slide']} ({e['file']}): registry has {eqs.normalize(e['latex'])!r}, "
        f"the slide {slide[e['slide'] - 1]!r}"
        for e in ENTRIES
        if eqs.normalize(e["latex"]) != slide[e["slide"] - 1]
    ]
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_entry_is_complete(entry):
    toc = toc_docnames()
    written = entry["chapter"] in toc
    if entry.get("status") == eqs.TO_COME:
        assert not written, f"{entry['chapter']} is in the TOC: fill in the entry, drop 'to come'"
        return
    assert written, f"{entry['chapter']} is not a page of the book (or mark the entry 'to come')"
    assert entry.get("anchor"), "no anchor: name the section that teaches this equation"
    assert entry.get("section") and entry.get("latex")
    if entry.get("corrected") or entry.get("erratum"):
        assert entry.get("corrected") and entry.get("erratum"), "a correction needs both fields"


def resolve(dotted):
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):  # longest importable module prefix
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            obj = getattr(obj, name)
        return obj
    raise ImportError(dotted)


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_functions_import(entry):
    for dotted in eqs.as_list(entry.get("function")):
        assert dotted.startswith("lecturekit."), f"{dotted}: name it from lecturekit."
        assert callable(resolve(dotted)), f"{dotted} is not callable"


def test_ids_in(path: Path):
    """Test functions (and Class::method) defined in a test module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.ClassDef):
            found |= {f"{node.name}::{f.name}" for f in node.body if isinstance(f, ast.FunctionDef)}
    return found


test_ids_in.__test__ = False  # a helper, not a test


@pytest.mark.parametrize("entry", ENTRIES, ids=IDS)
def test_tests_exist(entry):
    for node_id in eqs.as_list(entry.get("test")):
        file, _, name = node_id.partition("::")
        path = ROOT / file
        assert path.exists(), f"{node_id}: no file {file}"
        assert name.split("[")[0] in test_ids_in(path), f"{node_id}: no such test in {file}"


@pytest.mark.parametrize("entry", [e for e in ENTRIES if e.get("anchor")],
                         ids=[i for e, i in zip(ENTRIES, IDS, strict=True) if e.get("anchor")])
def test_anchor_resolves_in_built_html(entry):
    page = HTML / f"{entry['chapter']}.html"
    if not page.exists():
        pytest.fail(f"no built page {page}: build the book first (`make book`)")
    ids = set(re.findall(r'\bid="([^"]+)"', page.read_text(encoding="utf-8")))
    assert entry["anchor"] in ids, f"no id={entry['anchor']!r} in {page.relative_to(ROOT)}"


def test_index_page_lists_every_entry():
    page = HTML / "book" / "equations.html"
    if not page.exists():
        pytest.fail(f"no built page {page}: build the book first (`make book`)")
    text = page.read_text(encoding="utf-8")
    missing = [e["slide"] for e in ENTRIES if f"Slide equation {e['slide']} " not in text]
    assert not missing, f"slide equations missing from the index page: {missing}"
    assert text.count("to come") >= sum(e.get("status") == eqs.TO_COME for e in ENTRIES)
