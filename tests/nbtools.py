"""Keep committed notebooks in the state the tests expect.

A committed notebook carries outputs only in cells tagged ``nbval-check-output`` (nbval's own cell
tag, so nbval has something to compare and no marker shows on the page) and never an image:
figures exist because the build ran the code.

    python tests/nbtools.py refresh book/*.ipynb   # execute, keep only the checked outputs
    python tests/nbtools.py check book/*.ipynb     # exit 1 and list problems, if any

``make outputs`` runs the first; ``tests/test_notebooks.py`` runs the second's checks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

TAG = "nbval-check-output"
SEED_CALL = "lk.seed("
STYLE_CALL = "lk.book_style("
MAX_CODE_COLUMNS = 88  # a code cell fits the book's content column at 1400 px
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and TAG in cell.metadata.get("tags", [])


def problems(nb, name: str = "notebook") -> list[str]:
    """What is wrong with a committed notebook, as readable sentences (empty if nothing)."""
    out = []
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or SEED_CALL not in code[0].source:
        out.append(f"{name}: the first code cell must seed everything with lk.seed(...)")
    if not code or STYLE_CALL not in code[0].source:
        out.append(f"{name}: the first code cell must call lk.book_style() (the shared style)")
    if not any(is_checked(c) for c in code):
        out.append(f"{name}: no cell tagged '{TAG}', so nbval checks no number")
    for i, cell in enumerate(code):
        wide = [n for n, line in enumerate(cell.source.splitlines(), 1)
                if len(line) > MAX_CODE_COLUMNS]
        if wide:
            out.append(f"{name}: code cell {i} has lines over {MAX_CODE_COLUMNS} columns: {wide}")
        if "NBVAL" in cell.source:
            out.append(f"{name}: code cell {i} has an NBVAL comment; use nbval's cell tags")
        kinds = {k for o in cell.get("outputs", []) for k in o.get("data", {})}
        if any(k.startswith("image/") for k in kinds):
            out.append(f"{name}: code cell {i} carries an image output")
        if is_checked(cell) and not cell.get("outputs"):
            out.append(f"{name}: checked code cell {i} has no committed output to compare")
        if not is_checked(cell) and cell.get("outputs"):
            out.append(f"{name}: unchecked code cell {i} carries outputs (run `make outputs`)")
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error" or o.get("name") == "stderr":
                out.append(f"{name}: code cell {i} committed an error or stderr output")
    if "widgets" in nb.metadata:
        out.append(f"{name}: notebook metadata carries widget state")
    return out


def clean(nb):
    """Strip what must not be committed; keep the outputs of checked cells."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        if not is_checked(cell):  # nbval needs the execution count of a cell it compares
            cell.execution_count = None
            cell.outputs = []
    for key in ("widgets", "jupytext"):
        nb.metadata.pop(key, None)
    nb.metadata["kernelspec"] = KERNELSPEC
    return nb


def refresh(path: Path) -> None:
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    nbformat.write(clean(nb), path)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in {"refresh", "check"}:
        print(__doc__)
        return 2
    found = []
    for name in argv[1:]:
        path = Path(name)
        if argv[0] == "refresh":
            print(f"executing {path} ...", flush=True)
            refresh(path)
        found += problems(nbformat.read(path, as_version=4), str(path))
    print("\n".join(found) or "notebooks are clean")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
