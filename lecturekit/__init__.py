"""lecturekit: the library behind the executable course notes on SGD and its friends.

Notebooks import it as ``import lecturekit as lk``. One idea per module:

* :mod:`lecturekit.attention` -- the lecture's attention translation model, the running workload
* :mod:`lecturekit.bounds` -- the appendix "Optimizing B and η" derived with sympy
* :mod:`lecturekit.hvp` -- Hessian-vector products, power iteration for L
* :mod:`lecturekit.optim` -- the slides' optimizers as torch.optim optimizers
* :mod:`lecturekit.problems` -- the lecture's small problems and their closed forms
* :mod:`lecturekit.sgd` -- vanilla SGD runners and learning-rate schedules
* :mod:`lecturekit.stats` -- ĝ, σ̂ and B* per coordinate, the gradient noise scale
* :mod:`lecturekit.plots` -- figure helpers that take and return ``ax``
* :mod:`lecturekit.widgets` -- sliders, live in Jupyter and precomputed in the HTML book
"""

from . import attention, bounds, hvp, optim, plots, problems, sgd, stats, widgets

__all__ = [
    "attention", "bounds", "hvp", "optim", "plots", "problems", "sgd", "stats", "widgets",
    "seed", "source",
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
    that implements it without copying (and so without drifting from) the code."""
    import inspect

    from IPython.display import Code

    return Code(inspect.getsource(obj), language="python")
