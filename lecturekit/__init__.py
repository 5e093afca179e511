"""lecturekit: the library behind the executable course notes on SGD and its friends.

Notebooks import it as ``import lecturekit as lk``. One idea per module:

* :mod:`lecturekit.attention` -- the lecture's attention translation model, the running workload
* :mod:`lecturekit.bounds` -- the appendix "Optimizing B and η" derived with sympy
* :mod:`lecturekit.complex_step` -- complex-step derivatives, complex-safe abs and logsumexp
* :mod:`lecturekit.digits` -- small MLPs on scikit-learn's digits, many trained side by side
* :mod:`lecturekit.equations` -- the registry of the slides' equations behind the equation index
* :mod:`lecturekit.hvp` -- Hessian-vector products five ways, the curvature spectrum
* :mod:`lecturekit.mcmc` -- SGLD, stationary covariances of SGD, cyclic schedules
* :mod:`lecturekit.optim` -- the slides' optimizers as torch.optim optimizers
* :mod:`lecturekit.problems` -- the lecture's small problems and their closed forms
* :mod:`lecturekit.second_order` -- Newton, conjugate gradients, BFGS and L-BFGS
* :mod:`lecturekit.sgd` -- vanilla SGD runners and learning-rate schedules
* :mod:`lecturekit.stats` -- ĝ, σ̂ and B* per coordinate, the gradient noise scale
* :mod:`lecturekit.plots` -- figure helpers that take and return ``ax``
* :mod:`lecturekit.style` -- the book's one figure style (:func:`book_style`)
* :mod:`lecturekit.widgets` -- sliders, live in Jupyter and precomputed in the HTML book
"""

import re

from . import (
    attention,
    bounds,
    complex_step,
    digits,
    equations,
    hvp,
    mcmc,
    optim,
    plots,
    problems,
    second_order,
    sgd,
    stats,
    style,
    widgets,
)
from .style import book_style

__all__ = [
    "attention", "bounds", "complex_step", "digits", "equations", "hvp", "mcmc", "optim", "plots",
    "problems", "second_order", "sgd", "stats", "style", "widgets", "book_style", "seed", "source",
]
__version__ = "0.1.0"


def seed(s: int = 0):
    """Seed Python's, NumPy's and torch's global generators; return ``np.random.default_rng(s)``.

    Every notebook calls this in its first code cell. Code in lecturekit never uses the global
    NumPy generator: it takes an explicit ``rng``, and the returned one is the notebook's.
    """
    import random

    import numpy as np
    import torch

    random.seed(s)
    np.random.seed(s)  # noqa: NPY002 -- the legacy global, for code that still uses it
    torch.manual_seed(s)
    return np.random.default_rng(s)


def source(obj):
    """Display ``obj``'s source code, so a chapter can set a slide equation beside the function
    that implements it without copying (and so without drifting from) the code.

    Shown as the book shows code (Pygments classes that the theme styles, light and dark), in a
    box that may scroll sideways (class ``lk-source``). Sphinx cross-reference roles in
    docstrings, such as ``:class:`~torch.optim.SGD```, are shown as the name they point to
    (```SGD```): they are markup for the API docs, not for a reader of the code.
    """
    return _Source(inspect_source(obj))


_ROLE = re.compile(r":(?:py:)?(?:class|func|meth|mod|attr|data|obj|exc|ref|doc|math):`(~?)([^`]+)`")


def inspect_source(obj) -> str:
    """``obj``'s source with Sphinx roles replaced by their targets' names (see :func:`source`)."""
    import inspect

    def plain(m):
        target = m[2]
        if m[1] == "~":
            target = target.rsplit(".", 1)[-1]
        return f"``{target}``"

    return _ROLE.sub(plain, inspect.getsource(obj))


class _Source:
    """A code listing with a plain-text and an HTML view (see :func:`source`)."""

    def __init__(self, code: str):
        self.code = code

    def _repr_html_(self):
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer

        body = highlight(self.code, PythonLexer(), HtmlFormatter(nowrap=True))
        return (
            '<div class="lk-source highlight-python notranslate"><div class="highlight">'
            f"<pre>{body}</pre></div></div>"
        )

    def __repr__(self):
        return self.code
