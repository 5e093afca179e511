"""Sliders that are live in Jupyter and still work in the static HTML book.

One helper, :func:`slider`. It takes a drawing function ``draw(fig, **params)`` and one list of
values per parameter, and returns an object whose display carries two representations:

* ``application/vnd.jupyter.widget-view+json``: ipywidgets sliders that call ``draw`` again
  on every move (JupyterLab, Notebook and VS Code pick this one when a kernel is running);
* ``text/html``: every frame of the grid rendered once, at twice its displayed size (crisp on
  high-DPI screens) as lossless WebP, plus ``<input type="range">`` controls and a few lines of
  inline JavaScript that swap the frames, with no kernel and no network. The book's
  ``_config.yml`` tells MyST-NB to prefer it for the HTML builder.

Frames are drawn under the book's figure style (:mod:`lecturekit.style`). The frame grid is the
product of the value lists, so keep it small: each frame is roughly 30-60 kB, and a page must
stay under 4 MB.
"""

from __future__ import annotations

import base64
import html
import io
import itertools
import json
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from .style import style_context

__all__ = ["slider", "Slider", "render_png", "render_frame"]

MAX_FRAMES = 64
SCALE = 2  # frames are rendered at twice their displayed size


def render_png(draw: Callable[..., Any], params: dict, figsize=(8.0, 3.0), dpi=100) -> bytes:
    """Draw ``draw(fig, **params)`` on a fresh figure (no pyplot state), in the book's style,
    and return PNG bytes at ``dpi`` pixels per inch."""
    with style_context():
        fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig, **params)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def render_frame(draw: Callable[..., Any], params: dict, figsize=(8.0, 3.0), dpi=100) -> bytes:
    """One static frame: drawn at ``SCALE * dpi`` and encoded as lossless WebP (about a third of
    the PNG's bytes, pixel for pixel the same)."""
    from PIL import Image

    png = render_png(draw, params, figsize, SCALE * dpi)
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).save(buf, format="WEBP", lossless=True, method=4)
    return buf.getvalue()


def _label(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


class Slider:
    """A figure with one slider per parameter; see :func:`slider`."""

    def __init__(self, draw, grids: dict[str, Sequence], *, figsize, dpi, labels, initial,
                 alt="", caption=""):
        if not grids:
            raise ValueError("slider needs at least one parameter grid, e.g. eta=[0.1, 0.5]")
        self.draw = draw
        self.grids = {name: list(values) for name, values in grids.items()}
        for name, values in self.grids.items():
            if not values:
                raise ValueError(f"slider grid {name!r} is empty")
        n_frames = 1
        for values in self.grids.values():
            n_frames *= len(values)
        if n_frames > MAX_FRAMES:
            raise ValueError(f"slider grid has {n_frames} frames, more than {MAX_FRAMES}")
        self.figsize, self.dpi = figsize, dpi
        self.alt, self.caption = alt, caption
        self.labels = {name: (labels or {}).get(name, name) for name in self.grids}
        self.initial = {name: 0 for name in self.grids}
        for name, value in (initial or {}).items():
            if name not in self.grids:
                raise ValueError(f"initial names an unknown parameter {name!r}")
            self.initial[name] = self.grids[name].index(value)
        self._frames: list[str] | None = None

    def frames(self) -> list[str]:
        """Base64 WebP of every grid point, row-major: the first grid varies slowest."""
        if self._frames is None:
            names = list(self.grids)
            combos = itertools.product(*self.grids.values())
            images = (render_frame(self.draw, dict(zip(names, combo, strict=True)),
                                   self.figsize, self.dpi) for combo in combos)
            self._frames = [base64.b64encode(image).decode("ascii") for image in images]
        return self._frames

    def to_html(self) -> str:
        """The static, kernel-free representation: frames, range inputs and inline JS."""
        names = list(self.grids)
        shape = [len(self.grids[n]) for n in names]
        frames = self.frames()
        flat = 0
        for name, size in zip(names, shape, strict=True):
            flat = flat * size + self.initial[name]
        uid = "lk-slider-" + uuid.uuid4().hex[:10]
        width = round(self.figsize[0] * self.dpi)
        alt = self.alt or "figure for the chosen slider values"
        caption = (f'<figcaption class="lk-caption">{html.escape(self.caption)}</figcaption>'
                   if self.caption else "")
        controls = []
        for name in names:
            values = [_label(v) for v in self.grids[name]]
            i = self.initial[name]
            controls.append(
                f'<label class="lk-control">{html.escape(self.labels[name])} '
                f'<input type="range" min="0" max="{len(values) - 1}" step="1" value="{i}" '
                f'data-param="{html.escape(name)}" aria-label="{html.escape(self.labels[name])}">'
                f' <output>{html.escape(values[i])}</output></label>'
            )
        data = json.dumps({"shape": shape, "labels": [[_label(v) for v in self.grids[n]]
                                                      for n in names], "frames": frames})
        return (
            f'<figure class="lk-slider" id="{uid}" style="margin:0">'
            f'<img class="lk-frame" alt="{html.escape(alt)}" '
            f'src="data:image/webp;base64,{frames[flat]}" '
            f'style="width:{width}px;max-width:100%;height:auto">'
            f'<div class="lk-controls" style="display:flex;flex-wrap:wrap;gap:0.5em 1.5em">'
            + "".join(controls)
            + "</div>"
            + caption
            + f'<script type="application/json" class="lk-data">{data}</script>'
            f"<script>{_JS % json.dumps(uid)}</script></figure>"
        )

    def widget(self):
        """The live representation: ipywidgets sliders that redraw through ``draw``."""
        import ipywidgets as w

        image = w.Image(format="png")
        sliders = {
            name: w.SelectionSlider(
                options=[(_label(v), v) for v in values],
                value=values[self.initial[name]],
                description=self.labels[name],
                continuous_update=False,
            )
            for name, values in self.grids.items()
        }

        def redraw(_change=None):
            params = {name: s.value for name, s in sliders.items()}
            image.value = render_png(self.draw, params, self.figsize, self.dpi)

        for s in sliders.values():
            s.observe(redraw, names="value")
        redraw()
        return w.VBox([image, w.HBox(list(sliders.values()))])

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = {"text/plain": f"<lecturekit slider over {', '.join(self.grids)}>"}
        bundle["text/html"] = self.to_html()
        try:
            live = self.widget()
        except ImportError:  # no ipywidgets: the static frames still work
            return bundle
        live_bundle = live._repr_mimebundle_(include=include, exclude=exclude) or {}
        bundle.update({k: v for k, v in live_bundle.items() if k != "text/plain"})
        return bundle


_JS = """(function () {
  var root = document.getElementById(%s);
  var data = JSON.parse(root.querySelector("script.lk-data").textContent);
  var img = root.querySelector("img.lk-frame");
  var inputs = root.querySelectorAll("input[type=range]");
  function update() {
    var flat = 0;
    inputs.forEach(function (input, k) {
      var i = parseInt(input.value, 10);
      flat = flat * data.shape[k] + i;
      input.parentNode.querySelector("output").textContent = data.labels[k][i];
    });
    img.src = "data:image/webp;base64," + data.frames[flat];
  }
  inputs.forEach(function (input) { input.addEventListener("input", update); });
})();"""


def slider(
    draw: Callable[..., Any],
    /,
    *,
    figsize: tuple[float, float] = (8.0, 3.0),
    dpi: int = 100,
    labels: dict[str, str] | None = None,
    initial: dict[str, Any] | None = None,
    alt: str = "",
    caption: str = "",
    **grids: Sequence,
) -> Slider:
    """A matplotlib figure with one slider per keyword grid.

    ``draw(fig, **params)`` draws one frame on a fresh :class:`matplotlib.figure.Figure`
    (add axes with ``fig.subplots()``; never touch pyplot). Each keyword gives the values its
    slider steps through. Display the returned object as a cell's last expression.

    In Jupyter with a kernel the sliders are ipywidgets and every move calls ``draw`` again.
    In the built HTML book the same output holds every frame, precomputed, and plain
    ``<input type="range">`` controls that swap them: no kernel, no network.

    Parameters
    ----------
    draw : callable
        ``draw(fig, **params)``; its return value is ignored.
    figsize, dpi : figure size in inches, and CSS pixels per inch on the page (the static
        frames are rendered at twice that, so they stay sharp on high-DPI screens).
    labels : optional display names, e.g. ``{"eta": "η"}``.
    initial : optional starting value per parameter (must be in its grid).
    alt : what the figure shows, for readers who cannot see it (the image's alt text).
    caption : a caption shown under the controls.
    **grids : the values each parameter's slider takes, at most 64 frames in all.

    Examples
    --------
    >>> def draw(fig, eta): fig.subplots().plot([0, 1], [0, eta])
    >>> s = slider(draw, eta=[0.1, 0.5, 1.0], labels={"eta": "η"})
    >>> len(s.frames()), 'type="range"' in s.to_html()
    (3, True)
    """
    return Slider(draw, grids, figsize=figsize, dpi=dpi, labels=labels, initial=initial,
                  alt=alt, caption=caption)
