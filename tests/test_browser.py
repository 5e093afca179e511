"""Browser checks for the built book, opened straight from disk.

The book must work offline, as plain files (file://), e.g. copied to a USB
stick.  For every page listed in _toc.yml this module opens the built HTML in
headless Chromium, with the network emulated as offline, and checks:

* offline: no request leaves file:/data:/blob:/about:, no request fails, no
  JavaScript error is thrown and nothing is logged as a console error;
* math: if the page's source has TeX math, MathJax typeset it (every .math
  element holds an mjx-container and no raw \\( \\[ $$ is left in the text);
* images: every <img> actually loaded;
* sliders: every range input of every .lk-slider changes the frame image (and
  its <output> readout) when driven with the keyboard;
* page weight: each HTML file is at most 4 MB;
* layout at 1400x900: no printed output, display equation, table, figure or code cell is wider
  than the content column or scrolls inside its box (source listings from ``lk.source`` may);
  at 390x844 (a phone) the page never scrolls sideways;
* figures: every image is SVG or at least twice its displayed width, has alt text that describes
  it (not a file name), and every figure in a cell output has a caption;
* no machinery: no "NBVAL" anywhere in the page's text;
* exercises: every chapter page (the lecture and the appendix) has 3-6 exercises, each solution
  hidden until asked for;
* links: every relative link with a #fragment (the equation index's among them) names a page
  that exists and an id in it.

``python tests/test_browser.py PAGE.html [--chapter]`` prints the problems of one built page (for
checking a page built on its own with ``jupyter-book build book/x.ipynb``).

Needs Chromium (apt-get install -y chromium); LK_CHROMIUM overrides its path,
LK_REPO_ROOT the repository root.  Runs `make book` if the build is missing.
"""

import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(os.environ.get("LK_REPO_ROOT") or Path(__file__).resolve().parents[1]).resolve()
HTML = ROOT / "_build" / "html"
MAX_PAGE_BYTES = 4 * 1024 * 1024
TIMEOUT_MS = 30_000
DESKTOP, PHONE = {"width": 1400, "height": 900}, {"width": 390, "height": 844}
LOCAL_SCHEMES = {"file", "data", "blob", "about"}
# fmt: off
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-default-apps"]
# fmt: on
RAW_TEX = ["\\(", "\\)", "\\[", "\\]", "$$"]


def toc_entries(toc_path=ROOT / "_toc.yml"):
    """The `file:` entries of a jb-book TOC in reading order, root first."""
    if not toc_path.exists():
        return []
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8")) or {}
    entries = [toc["root"]] if "root" in toc else []

    def walk(items):
        for item in items or []:
            if "file" in item:
                entries.append(re.sub(r"\.(md|ipynb)$", "", item["file"]))
            walk(item.get("sections"))

    walk(toc.get("chapters"))
    walk(toc.get("sections"))
    for part in toc.get("parts") or []:
        walk(part.get("chapters"))
    return entries


def chapter_entries(toc_path=ROOT / "_toc.yml"):
    """Entries of the parts that hold chapters (all but "Reference"): each ends in exercises."""
    if not toc_path.exists():
        return []
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8")) or {}
    found = []

    def walk(items):
        for item in items or []:
            found.append(re.sub(r"\.(md|ipynb)$", "", item["file"]))
            walk(item.get("sections"))

    for part in toc.get("parts") or []:
        if part.get("caption") != "Reference":
            walk(part.get("chapters"))
    return found


def source_of(entry):
    return next((p for p in (ROOT / f"{entry}.md", ROOT / f"{entry}.ipynb") if p.exists()), None)


def has_tex(text):
    """True if MyST text has $...$, $$...$$ or {math}; code is ignored (like MyST's dollarmath)."""
    text = re.sub(r"^(```|~~~)(?!\s*\{math\}).*?^\1", "", text, flags=re.MULTILINE | re.DOTALL)
    text = re.sub(r"`[^`\n]+`", "", text)
    return bool(re.search(r"\{math\}|\$\$.+?\$\$|(?<![\\$])\$[^$\n]+?(?<!\\)\$", text, re.DOTALL))


def source_has_math(path):
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".ipynb":  # only markdown cells: code may print dollars
        cells = [c for c in json.loads(text).get("cells", []) if c.get("cell_type") == "markdown"]
        text = "\n\n".join("".join(c.get("source", "")) for c in cells)
    return has_tex(text)


def short(text, n=80):
    return " ".join(text.split())[:n]


def unavailable(reason):
    """A missing browser fails on CI and skips locally."""
    (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)(reason)


@pytest.fixture(scope="session")
def built_book():
    if not (HTML / "index.html").exists():
        subprocess.run(["make", "book"], cwd=ROOT, check=True)
        if not (HTML / "index.html").exists():  # e.g. `book` is not .PHONY and book/ exists
            pytest.fail(f"`make book` did not produce {HTML / 'index.html'}")
    return HTML


def test_toc_pages_exist(built_book):
    entries = toc_entries()
    assert entries, f"no file entries in {ROOT / '_toc.yml'}"
    missing = [f"{e}: no source {e}.md or {e}.ipynb" for e in entries if source_of(e) is None]
    missing += [
        f"{e}: no built {e}.html" for e in entries if not (built_book / f"{e}.html").exists()
    ]
    assert not missing, "\n".join(missing)


def record_problems(context, page):
    """Collect network use and errors of one page into a list."""
    problems = []

    def on_request(request):
        if urlsplit(request.url).scheme not in LOCAL_SCHEMES:
            problems.append(f"network request: {request.url[:120]}")

    def on_console(msg):
        if msg.type == "error":
            problems.append(f"console error: {msg.text}")

    def on_failed(request):
        problems.append(f"failed request: {request.url[:120]} ({request.failure})")

    context.on("request", on_request)
    context.on("requestfailed", on_failed)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", on_console)
    return problems


def wait_for_mathjax(page):
    from playwright.sync_api import Error as PlaywrightError

    try:
        page.wait_for_function(
            "() => !window.MathJax || (window.MathJax.startup && window.MathJax.startup.promise)",
            timeout=TIMEOUT_MS,
        )
        page.evaluate(
            "() => window.MathJax && window.MathJax.startup"
            " ? window.MathJax.startup.promise.then(() => true) : true"
        )
    except PlaywrightError as exc:  # a timeout, or typesetting failed
        return [f"MathJax did not finish: {str(exc).splitlines()[0]}"]
    return []


def check_math(page, has_math):
    untypeset = page.evaluate(
        "() => [...document.querySelectorAll('.math')]"
        ".filter(e => !e.querySelector('mjx-container')).map(e => e.textContent)"
    )
    problems = [f"math not typeset: {short(t)}" for t in untypeset]
    if has_math:
        if page.locator("mjx-container").count() == 0:
            problems.append("source has TeX math, page has no mjx-container (MathJax not loaded?)")
        text = page.evaluate("""() => {
            const root = (document.querySelector('main') || document.body).cloneNode(true);
            root.querySelectorAll('pre, code, .cell_output, script, style, mjx-container')
                .forEach(e => e.remove());
            return root.textContent; }""")
        problems += [
            f"raw TeX {d} left in text: ...{short(text[max(0, text.index(d) - 30) :], 70)}"
            for d in RAW_TEX
            if d in text
        ]
    return problems


def check_images(page):
    broken = page.evaluate("""async () => {
        const imgs = [...document.images];
        imgs.forEach(img => { if (img.loading === 'lazy') img.loading = 'eager'; });
        await Promise.all(imgs.map(img => img.complete || new Promise(done => {
            img.addEventListener('load', done);
            img.addEventListener('error', done);
            setTimeout(done, 10000); })));
        return imgs.filter(img => !(img.complete && img.naturalWidth > 0))
            .map(img => img.src || '(no src)'); }""")
    return [f"image not loaded: {src[:80]}" for src in broken]


SRC_HASH = """img => { const s = img.getAttribute('src') || ''; let h = 2166136261;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    return s.length + ' chars, hash ' + (h >>> 0).toString(16); }"""
OUTPUT_TEXT = """el => { const box = el.closest('label') || el.parentElement;
    const out = box && box.querySelector('output'); return out ? out.textContent : null; }"""


def slider_state(rng, img):
    """(value, frame image fingerprint, readout text or None) of one range input."""
    return rng.input_value(), img.evaluate(SRC_HASH), rng.evaluate(OUTPUT_TEXT)


def check_sliders(page):
    problems = []
    sliders = page.locator(".lk-slider")
    for i in range(sliders.count()):
        slider = sliders.nth(i)
        name = f"slider #{i} ({slider.get_attribute('id') or 'no id'})"
        img, ranges = slider.locator("img.lk-frame"), slider.locator("input[type=range]")
        if img.count() != 1 or ranges.count() == 0:
            problems.append(
                f"{name}: wants 1 img.lk-frame + range inputs, has {img.count()} + {ranges.count()}"
            )
            continue
        for j in range(ranges.count()):
            rng = ranges.nth(j)
            param = rng.get_attribute("data-param") or rng.get_attribute("name") or f"input #{j}"
            before = slider_state(rng, img)
            rng.focus()
            at_max = float(before[0]) >= float(rng.get_attribute("max") or 100)
            rng.press("Home" if at_max else "End")
            for _ in range(20):  # give the slider's script up to 2 s
                after = slider_state(rng, img)
                if all(a != b for a, b in zip(after, before, strict=True) if b is not None):
                    break
                page.wait_for_timeout(100)
            problems += [
                f"{name} param {param}: {what} did not change (still {b})"
                for what, b, a in zip(("value", "image", "output"), before, after, strict=True)
                if b is not None and a == b
            ]
    return problems


# Blocks of the content column that must fit it at desktop width. Source listings shown with
# lk.source (class lk-source) may scroll; so may the theme's own chrome outside the article.
WIDE_BLOCKS = """() => {
    const col = document.querySelector('article.bd-article') || document.querySelector('main');
    const right = col.getBoundingClientRect().right + 1;
    const sel = ['.cell_output pre', '.cell_output table', '.cell_output img', '.cell_input pre',
                 'div.math', 'mjx-container[display="true"]', 'article table', 'figure',
                 '.lk-slider', '.cell_output .output'];
    const out = [];
    for (const el of col.querySelectorAll(sel.join(','))) {
        if (el.closest('.lk-source') || el.offsetParent === null) continue;
        const r = el.getBoundingClientRect();
        const scrolls = el.scrollWidth > el.clientWidth + 1 && el.clientWidth > 0;
        if (r.right > right || scrolls) {
            const text = (el.textContent || el.getAttribute('alt') || '').trim();
            out.push(el.tagName.toLowerCase() + '.' + [...el.classList].join('.') + ' '
                     + Math.round(el.scrollWidth) + ' px in ' + Math.round(el.clientWidth)
                     + ' px (column ends at ' + Math.round(right) + '): '
                     + text.replace(/\\s+/g, ' ').slice(0, 60));
        }
    }
    return out; }"""


def check_desktop_layout(page):
    return [f"wider than the column at 1400 px: {w}" for w in page.evaluate(WIDE_BLOCKS)]


def check_phone_layout(page):
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    if width[0] > width[1] + 1:
        culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(e => e.getBoundingClientRect().right > window.innerWidth + 1
                         && getComputedStyle(e).position !== 'fixed')
            .filter(e => ![...e.children].some(c =>
                         c.getBoundingClientRect().right > window.innerWidth + 1))
            .slice(0, 5).map(e => e.tagName.toLowerCase() + '.' + [...e.classList].join('.'))""")
        return [f"at 390 px the page scrolls sideways ({width[0]} px wide): {culprits}"]
    return []


FILE_NAME = re.compile(r"(^|/)[\w.-]+\.(png|svg|jpe?g|webp|gif)$", re.IGNORECASE)


def check_figures(page):
    """Crisp (SVG or >= 2x displayed width), described (alt text), captioned."""
    images = page.evaluate("""() => {
        const col = document.querySelector('article.bd-article') || document.querySelector('main');
        return [...col.querySelectorAll('img')].filter(i => i.offsetParent !== null).map(i => ({
            src: i.getAttribute('src') || '', alt: i.getAttribute('alt') || '',
            natural: i.naturalWidth, shown: i.getBoundingClientRect().width,
            output: !!i.closest('.cell_output'),
            caption: !!(i.closest('figure') && i.closest('figure').querySelector('figcaption')),
            }));}""")
    problems = []
    for img in images:
        name = img["src"][:60] or "(no src)"
        svg = img["src"].split("?")[0].endswith(".svg") or img["src"].startswith("data:image/svg")
        if not svg and img["natural"] < 2 * img["shown"] - 2:
            problems.append(f"image {name}: {img['natural']} px for {img['shown']:.0f} px shown")
        alt = img["alt"].strip()
        if len(alt) < 12 or FILE_NAME.search(alt) or alt.startswith(("_images", "../")):
            problems.append(f"image {name}: alt text {alt!r} does not describe the figure")
        if img["output"] and not img["caption"]:
            problems.append(f"image {name}: figure without a caption")
    return problems


def check_no_machinery(page):
    text = page.evaluate("() => document.body.innerText")
    return [f"visible machinery: ...{short(text[text.index(w) - 20:], 50)}"
            for w in ("NBVAL", "nbval") if w in text]


def check_exercises(page):
    state = page.evaluate("""() => ({
        exercises: document.querySelectorAll('.exercise').length,
        solutions: [...document.querySelectorAll('.solution')].map(s => {
            const body = s.querySelector('section, .admonition-body, p:not(.admonition-title)');
            return s.classList.contains('dropdown') || (body && body.offsetHeight === 0);
        }) })""")
    problems = []
    if not 3 <= state["exercises"] <= 6:
        problems.append(f"{state['exercises']} exercises; a chapter ends with 3 to 6")
    if len(state["solutions"]) < state["exercises"]:
        problems.append(f"{len(state['solutions'])} solutions for {state['exercises']} exercises")
    if not all(state["solutions"]):
        problems.append("a solution is shown by default; hide it (:class: dropdown)")
    return problems


def check_links(html: Path):
    """Relative links with a #fragment: the page exists and holds the id."""
    problems, cache = [], {}
    for href in set(re.findall(r'<a [^>]*href="([^"#:]*\.html)#([^"]+)"', html.read_text("utf-8"))):
        target = (html.parent / href[0]).resolve()
        if target not in cache:
            text = target.read_text("utf-8") if target.exists() else None
            cache[target] = None if text is None else set(re.findall(r'\bid="([^"]+)"', text))
        if cache[target] is None:
            problems.append(f"link to {href[0]}#{href[1]}: no page {href[0]}")
        elif href[1] not in cache[target]:
            problems.append(f"link to {href[0]}#{href[1]}: no such id in {href[0]}")
    return problems


def page_problems(chromium, html: Path, source: Path | None, chapter: bool):
    problems = []
    for viewport in (DESKTOP, PHONE):
        # file:// still works offline; the network does not
        context = chromium.new_context(offline=True, viewport=viewport)
        page = context.new_page()
        seen = record_problems(context, page)
        try:
            page.goto(html.as_uri(), wait_until="load", timeout=TIMEOUT_MS)
            seen += wait_for_mathjax(page)
            if viewport is PHONE:
                seen += check_phone_layout(page)
                continue
            seen += check_math(page, source is not None and source_has_math(source))
            seen += check_images(page)
            seen += check_figures(page)
            seen += check_desktop_layout(page)
            seen += check_no_machinery(page)
            if chapter:
                seen += check_exercises(page)
            seen += check_sliders(page)
            if source is not None and "widgets.slider(" in source.read_text(encoding="utf-8"):
                if page.locator(".lk-slider").count() == 0:
                    seen.append("source makes a slider, page shows none (widget view chosen?)")
        finally:
            context.close()
        problems += [p for p in seen if p not in problems]
    problems += check_links(html)
    if html.stat().st_size > MAX_PAGE_BYTES:
        problems.append(f"page weighs {html.stat().st_size / 2**20:.1f} MB, more than 4 MB")
    return problems


@pytest.mark.parametrize("entry", toc_entries(), ids=str)
def test_page(chromium, built_book, entry):
    html, source = built_book / f"{entry}.html", source_of(entry)
    assert html.exists(), f"built page missing: {html}"
    problems = page_problems(chromium, html, source, entry in chapter_entries())
    assert not problems, f"{entry} ({html.relative_to(ROOT)}):\n  " + "\n  ".join(problems)


if __name__ == "__main__":  # python tests/test_browser.py PAGE.html [--chapter]
    import sys

    from playwright.sync_api import sync_playwright

    target = Path(sys.argv[1]).resolve()
    stem = target.stem
    src = next((p for p in (ROOT / "book").glob(f"**/{stem}.*") if p.suffix in {".md", ".ipynb"}),
               None)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                     args=CHROMIUM_ARGS)
        found = page_problems(browser, target, src, "--chapter" in sys.argv)
        browser.close()
    print("\n".join(found) or "no problems")
