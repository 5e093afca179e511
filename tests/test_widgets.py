"""lecturekit.widgets: one display object, a live widget view and a static HTML fallback."""

import base64
import io
import re

import pytest
from PIL import Image

import lecturekit as lk


def draw(fig, a, b):
    ax = fig.subplots()
    ax.plot([0, 1], [0, a * b])
    ax.set_title(f"a={a} b={b}")


def test_static_html_holds_every_frame_in_row_major_order():
    s = lk.widgets.slider(draw, a=[1, 2, 3], b=[0.5, 1.5], initial={"a": 2, "b": 1.5})
    frames = s.frames()
    assert len(frames) == 6 and len(set(frames)) == 6
    raw = [base64.b64decode(f) for f in frames]
    assert all(r[:4] == b"RIFF" and r[8:12] == b"WEBP" for r in raw)
    # rendered at twice the displayed size: 8 in x 100 px/in on the page, 1600 px in the frame
    assert Image.open(io.BytesIO(raw[0])).size == (1600, 300 * 2)
    assert 'style="width:800px;max-width:100%' in s.to_html()
    html = s.to_html()
    assert html.count('type="range"') == 2
    # the initial image is frame (a=2, b=1.5) -> flat index 1 * 2 + 1 = 3
    src = re.search(r'<img class="lk-frame"[^>]*src="data:image/webp;base64,([^"]+)"', html)[1]
    assert src == frames[3]
    assert "http" not in html.replace('aria-label', '')  # nothing fetched from the network


def test_mimebundle_carries_live_and_static_views():
    bundle = lk.widgets.slider(draw, a=[1, 2], b=[1])._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<figure class="lk-slider"')


def test_alt_text_and_caption_reach_the_page():
    s = lk.widgets.slider(draw, a=[1, 2], b=[1], alt="a line of slope a*b", caption="Slope.")
    html = s.to_html()
    assert 'alt="a line of slope a*b"' in html
    assert '<figcaption class="lk-caption">Slope.</figcaption>' in html


def test_live_widget_redraws_on_change():
    s = lk.widgets.slider(draw, a=[1, 2], b=[1])
    box = s.widget()
    image, controls = box.children
    before = image.value
    controls.children[0].value = 2
    assert image.value != before


def test_bad_grids_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        lk.widgets.slider(draw, a=[], b=[1])
    with pytest.raises(ValueError, match="frames"):
        lk.widgets.slider(draw, a=list(range(10)), b=list(range(10)))
    with pytest.raises(ValueError, match="unknown"):
        lk.widgets.slider(draw, a=[1], b=[1], initial={"c": 1})
