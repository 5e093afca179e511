"""The book's Sphinx plumbing (listed in ``_config.yml``'s extensions).

* ``lk_author_year``: a pybtex style whose bibliography labels read like the in-text citations of
  ``bibtex_reference_style: author_year`` ("Goyal et al., 2017", not pybtex's alpha label
  "GDollarG+17"), with LaTeX accents decoded (Dollár).
* ``equation-index``: a directive that renders :data:`lecturekit.equations.REGISTRY` at build
  time, so ``book/equations.md`` cannot drift from the registry the tests check.
"""

from __future__ import annotations

from docutils import nodes
from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.util.docutils import SphinxDirective


def _last_name(person) -> str:
    raw = " ".join(person.prelast_names + person.last_names)
    return str(Text.from_latex(raw)).replace("{", "").replace("}", "")


def author_year_label(entry) -> str:
    """"Name, 2017", "Name and Other, 2017" or "Name et al., 2017" (editors if no authors)."""
    people = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in people]
    if not names:
        who = entry.fields.get("key", entry.key)
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        seen: dict[str, int] = {}
        for entry in sorted_entries:
            label = author_year_label(entry)
            seen[label] = seen.get(label, 0) + 1
            yield label if seen[label] == 1 else f"{label}{'abcdefghij'[seen[label] - 1]}"


class AuthorYearStyle(UnsrtStyle):
    default_label_style = "lk_author_year"
    default_sorting_style = "author_year_title"


register_plugin("pybtex.style.labels", "lk_author_year", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "lk_author_year", AuthorYearStyle)


class EquationIndex(SphinxDirective):
    """Render the equation registry as MyST, parsed in place."""

    has_content = False

    def run(self):
        from .equations import index_markdown, load, page_titles

        entries = load(self.env.srcdir)
        titles = page_titles(self.env.srcdir, {e["chapter"] for e in entries})
        for entry in entries:
            self.env.note_dependency(str(self.env.srcdir) + "/book/equations/" + entry["file"])
        container = nodes.container(classes=["lk-equation-index"])
        text = index_markdown(self.env.srcdir, titles)
        self.state.nested_parse(self._lines(text), self.content_offset, container)
        return [container]

    def _lines(self, text):
        from docutils.statemachine import StringList

        return StringList(text.splitlines(), source="lecturekit.equations")


def setup(app):
    app.add_directive("equation-index", EquationIndex)
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
