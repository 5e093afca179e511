"""The equation registry: every display equation of the lecture, in slide order, with where the
book teaches it, the lecturekit function that implements it and the test that checks it.

The registry is data, one YAML file per chapter in ``book/equations/`` (so a chapter's entries
sit next to nothing else's). Each entry is a mapping:

``slide``
    ordinal of the equation among the slide text's ``$$ ... $$`` blocks (1-based, slide order);
``section``
    the slide's title;
``latex``
    the equation exactly as the slide prints it (typos included: see ``erratum``);
``chapter``
    the book page that teaches it (a docname such as ``book/lr_batch``);
``anchor``
    the HTML id, in that page, of the section that teaches it;
``function``
    a dotted name (or a list of them) in lecturekit implementing it, or null where the equation
    is a definition the code only uses;
``test``
    a pytest node id (or a list), ``tests/test_x.py::test_name``, that checks it, or null;
``corrected``
    optional: the book's corrected LaTeX, where the slide has a typo;
``erratum``
    optional: one sentence on what the slide printed and why it is wrong;
``status``
    ``to come`` for entries whose chapter is not written yet (then anchor, function and test may
    be absent).

``tests/test_equations.py`` asserts that the registry covers every display equation of the slides,
every function imports, every test exists and every anchor resolves in the built HTML. The page
``book/equations.md`` renders :func:`index_markdown` at build time (``lecturekit.sphinxext``), so
the index cannot drift from the registry.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = [
    "load", "slide_equations", "normalize", "index_markdown", "page_titles", "as_list", "TO_COME",
]

TO_COME = "to come"
ROOT = Path(__file__).resolve().parents[1]


def normalize(latex: str) -> str:
    """LaTeX with runs of white space folded, for comparing the registry with the slides."""
    return " ".join(latex.split())


def slide_equations(text: str) -> list[str]:
    """The ``$$ ... $$`` display equations of the slide text, in order, whitespace folded."""
    return [normalize(m) for m in re.findall(r"\$\$(.+?)\$\$", text, re.DOTALL)]


def as_list(value) -> list[str]:
    """``None`` -> [], a string -> [it], a list -> itself."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def load(root: Path | str = ROOT) -> list[dict]:
    """Every registry entry under ``root/book/equations``, sorted by slide order."""
    import yaml

    entries = []
    for path in sorted((Path(root) / "book" / "equations").glob("*.yml")):
        for entry in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            entry["file"] = path.name
            entries.append(entry)
    return sorted(entries, key=lambda e: e["slide"])


def page_titles(root: Path | str, docnames) -> dict[str, str]:
    """The first ``# `` heading of each page's source (``.ipynb`` or ``.md``), by docname."""
    import json

    titles = {}
    for doc in docnames:
        for suffix in (".ipynb", ".md"):
            path = Path(root) / f"{doc}{suffix}"
            if not path.exists():
                continue
            text = path.read_text(encoding="utf-8")
            if suffix == ".ipynb":
                cells = json.loads(text)["cells"]
                md = [c for c in cells if c["cell_type"] == "markdown"]
                text = "\n".join("".join(c["source"]) for c in md)
            found = re.search(r"^# +(.+?)\s*$", text, re.MULTILINE)
            if found:
                titles[doc] = found[1]
            break
    return titles


def _page_link(entry, titles: dict[str, str]) -> str:
    """A link from ``book/equations.html`` to the entry's section (both pages under book/)."""
    page = entry["chapter"].removeprefix("book/")
    title = titles.get(entry["chapter"], page)
    return f'<a class="lk-eq-link" href="{page}.html#{entry["anchor"]}">{title}</a>'


def index_markdown(root: Path | str = ROOT, titles: dict[str, str] | None = None) -> str:
    """The equation index as MyST markdown: one block per slide section, in slide order.

    ``titles`` maps docnames to page titles. Links are relative to ``book/equations.html``.
    """
    titles = titles or {}
    lines: list[str] = []
    section = None
    for e in load(root):
        if e["section"] != section:
            section = e["section"]
            lines += [f"## {section}", ""]
        lines += ["$$", e["latex"].strip(), "$$", ""]
        if e.get("corrected"):
            lines += ["The book's correction:", "", "$$", e["corrected"].strip(), "$$", ""]
        bits = [f"slide equation {e['slide']}"]
        if e.get("status") == TO_COME:
            bits.append(f"taught in *{titles.get(e['chapter'], e['chapter'])}*: **to come**")
        else:
            bits.append(f"taught in {_page_link(e, titles)}")
        code = as_list(e.get("function"))
        bits.append("code " + ", ".join(f"`{f}`" for f in code) if code else "no code")
        tests = as_list(e.get("test"))
        if tests:
            bits.append("test " + ", ".join(f"`{t}`" for t in tests))
        if e.get("erratum"):
            bits.append(f"erratum: {e['erratum']}")
        meta = " · ".join(bits)
        lines += [meta[:1].upper() + meta[1:], ""]
    return "\n".join(lines)
