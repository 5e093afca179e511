"""Build one chapter of the book on its own, for a quick look while working on it.

    python tests/build_page.py book/sgd.ipynb [OUT]       # OUT defaults to /tmp/lk-page-sgd

It lays out OUT/src with links to the repository's configuration, static files, bibliography
and book/, and a table of contents holding just that page and the Markdown pages it may link to,
then runs ``jupyter-book build`` there (cached per OUT, so an unchanged page is not re-executed).
The page is at OUT/src/_build/html/book/NAME.html; check it with
``python tests/test_browser.py OUT/src/_build/html/book/NAME.html --chapter``.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(page: str, out: str | None = None) -> int:
    doc = Path(page).with_suffix("").as_posix()
    out_dir = Path(out or f"/tmp/lk-page-{Path(doc).name}")
    src = out_dir / "src"
    src.mkdir(parents=True, exist_ok=True)
    for name in ("_config.yml", "_static", "references.bib", "book"):
        link = src / name
        if not link.exists():
            link.symlink_to(ROOT / name)
    extras = [p.with_suffix("").as_posix() for p in sorted((ROOT / "book").glob("*.md"))]
    extras = [e.removeprefix(str(ROOT) + "/") for e in extras]
    chapters = "".join(f"  - file: {e}\n" for e in extras if e != doc and not e.endswith("status"))
    (src / "_toc.yml").write_text(f"format: jb-book\nroot: {doc}\nchapters:\n{chapters}")
    jb = Path(sys.executable).with_name("jupyter-book")
    done = subprocess.run([str(jb), "build", "--keep-going", str(src)])
    print(f"page: {src / '_build' / 'html' / (doc + '.html')}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
