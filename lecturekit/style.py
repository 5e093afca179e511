"""The book's one figure style: crisp at any zoom, readable on a phone, titles that never collide.

Every notebook calls :func:`book_style` in its first code cell. It sets matplotlib's rc
parameters to :data:`RC` and asks IPython's inline backend for SVG, so static figures are vector
graphics (sharp on any screen, at any zoom). Slider frames (:mod:`lecturekit.widgets`) are drawn
under the same parameters with :func:`style_context` and rendered at twice their displayed size.

Sizes: a 7-inch figure is 504 pt wide in SVG, 672 CSS px on the page, inside the book's 784-px
column; 9-pt tick labels are then 12 CSS px. A figure wider than the column is scaled down, so
keep ``figsize`` at most 8 inches wide (tick labels stay above 9 CSS px).
"""

from __future__ import annotations

import contextlib

__all__ = ["RC", "book_style", "style_context", "MAX_WIDTH_IN"]

MAX_WIDTH_IN = 8.0
RC = {
    "figure.figsize": (7.0, 3.2),
    "figure.dpi": 100,
    "figure.constrained_layout.use": True,  # titles, suptitles and colour bars never collide
    "font.size": 10,
    "axes.titlesize": 10.5,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.framealpha": 0.85,
    "figure.titlesize": 11,
    "axes.grid": False,
    "lines.linewidth": 1.6,
    "svg.fonttype": "path",  # glyphs as paths: the page looks the same whatever fonts it has
    "svg.hashsalt": "lecturekit",  # stable ids, so an unchanged figure gives the same SVG
    "image.interpolation": "nearest",
}


def book_style(fmt: str = "svg") -> None:
    """Apply :data:`RC` globally and make IPython's inline backend emit ``fmt`` (SVG).

    This is the one place that touches global matplotlib state; library code draws on the
    ``ax`` or ``fig`` it is given.
    """
    import matplotlib as mpl

    mpl.rcParams.update(RC)
    with contextlib.suppress(ImportError):  # outside IPython there is no inline backend
        from matplotlib_inline.backend_inline import set_matplotlib_formats

        set_matplotlib_formats(fmt)


@contextlib.contextmanager
def style_context():
    """:data:`RC` for the duration of a ``with`` block, whatever the global state is."""
    import matplotlib as mpl

    with mpl.rc_context(RC):
        yield
