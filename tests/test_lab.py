"""JupyterLab check: a chapter reads as in the book, and its slider is live, where students run it.

`make lab` opens the notebooks in JupyterLab, where jupyterlab-myst (pinned in requirements.txt)
renders the markdown cells as MyST, as the book does.  This module starts JupyterLab from the
project's venv on a free local port, with a fresh copy of one chapter in a temporary directory
(outputs cleared; the committed notebook is never touched), opens it in headless Chromium and
checks:

* MyST: jupyterlab-myst renders every markdown cell, and none shows raw MyST (a ```{name}
  fence, a {role}`...` role, a :label: option, bare $$), before and after running; KaTeX (what
  jupyterlab-myst uses) typesets the math without errors; every cited key shows as a citation.
  jupyterlab-myst 2.7.0 cannot read references.bib (it has no BibTeX support), so a citation
  shows its key flagged "Citation Not Found", not the book's author-year label.  The copy is
  left untrusted, as a fresh checkout is: jupyterlab-myst needs trust only for inline {eval}
  expressions, which the book does not use.  A solution gated over several cells
  ({solution-start} ... {solution-end}) shows as "Start of Solution to Exercise N" and the cells
  below it, not folded: jupyterlab-myst renders each cell on its own;
* running: Run > Run All Cells executes every code cell without an error;
* sliders: moving each slider of a live ipywidgets figure redraws its image;
* offline: no request or websocket leaves 127.0.0.1 (others are aborted and reported), no
  request fails, no JavaScript or console error.  JupyterLab's news feed, update check and extension
  manager, the only parts that would go online, are switched off.

The server always stops (SIGTERM, which also shuts down the kernel, then SIGKILL).  Needs
Chromium and Playwright, as tests/test_browser.py does: with CI=true their absence fails,
locally it skips.  LK_LAB_SCREENSHOT=path saves a screenshot of the executed notebook.
"""

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_browser import ROOT

try:
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # the browser fixture skips, or fails on CI, and says why
    PlaywrightError = Exception

CHAPTER = ROOT / "book" / "sgd.ipynb"  # a live slider, a theorem, {cite} roles
BIN = Path(sys.executable).parent  # the venv's bin: jupyter, and python for the kernel
START_TIMEOUT_S = 90
RUN_TIMEOUT_MS = 180_000
STEP_TIMEOUT_MS = 60_000
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
LOCAL_SCHEMES = {"data", "blob", "about"}
# JupyterLab user settings for this run: no news toast (and no news or update fetch), and every
# cell kept in the DOM (no virtual scrolling), so that the page can be read whole.
SETTINGS = {
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false",
                                                   "checkForUpdates": False},
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}
# Raw MyST as JupyterLab shows it without jupyterlab-myst: the text of a fenced directive's
# options and body (its name is then only a `language-{...}` class), literal roles, bare $$.
RAW_MYST = ["```{", ":::{", "{cite", "{prf:", "{exercise", "{solution", "{eq}", "{ref}",
            "{numref}", "{doc}", "{math}", "{{", ":label:", ":class:", "$$"]
# The rendered text of every markdown cell, without math (KaTeX keeps its TeX source in an
# annotation) and inline code (`{cite}` may be quoted on purpose); a `pre` block's language class
# betrays an unrendered directive.
MARKDOWN_TEXT = """() => [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')]
  .map(cell => {
    const out = cell.querySelector('.myst') || cell.querySelector('.jp-RenderedMarkdown');
    if (!out) return {myst: false, text: '', fences: []};
    const copy = out.cloneNode(true);
    copy.querySelectorAll('.katex, mjx-container, script, style').forEach(e => e.remove());
    copy.querySelectorAll('code').forEach(e => { if (!e.closest('pre')) e.remove(); });
    const fences = [...out.querySelectorAll('pre code[class*="language-{"]')]
        .map(e => e.className);
    return {myst: out.classList.contains('myst'), text: copy.textContent, fences}; })"""
PROMPTS = """() => [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
    .map(e => e.textContent.trim())"""
RUN_FINISHED = """() => {
    const p = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell .jp-InputPrompt')]
        .map(e => e.textContent.trim());
    const done = s => /^\\[\\d+\\]:$/.test(s);
    const idle = document.querySelector('.jp-Notebook-ExecutionIndicator[data-status="idle"]');
    return idle !== null && p.length > 0 && (p.every(done)
        || (p.some(done) && !p.some(s => s === '[*]:'))); }"""
ERRORS = """() => [...document.querySelectorAll('.jp-Notebook .jp-OutputArea-output')]
    .map(e => e.textContent)
    .filter(t => /Traceback \\(most recent call last\\)|^\\w+(Error|Exception): /m.test(t))"""
IMAGE_STATE = """async img => {
    if (!img.complete || img.naturalWidth === 0) return null;
    const bytes = new Uint8Array(await (await fetch(img.src)).arrayBuffer());
    const hash = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
    return img.src + ' ' + [...hash].map(b => b.toString(16).padStart(2, '0')).join(''); }"""
IMAGE_LOADED = "([img, src]) => img.src !== src && img.complete && img.naturalWidth > 0"
MARKDOWN_RENDERED = """() => {
    const cells = [...document.querySelectorAll('.jp-Notebook .jp-MarkdownCell')];
    return cells.length > 0
        && cells.every(c => c.querySelector('.myst *, .jp-RenderedMarkdown *')); }"""
SHOW_THEOREM = """() => { const box = [...document.querySelectorAll('.jp-MarkdownCell aside')]
    .find(e => /^(Theorem|Exercise)/.test(e.textContent.trim()));
    if (box) box.scrollIntoView({block: 'start'}); }"""


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def copy_chapter(dest):
    """The chapter as committed, minus outputs and execution counts (the run makes its own)."""
    nb = json.loads(CHAPTER.read_text(encoding="utf-8"))
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    dest.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return nb


def log_tail(path, n=30):
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return "\n".join(lines[-n:]) or "(empty log)"


def stop(proc):
    """SIGTERM (the server shuts its kernels down), then SIGKILL; never waits unbounded."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving a copy of the chapter: (base URL, token, nb)."""
    jupyter = BIN / "jupyter"
    if not jupyter.exists():
        pytest.fail(f"no {jupyter}: install requirements.txt into the venv (make lab)")
    tmp = tmp_path_factory.mktemp("lab")
    notebooks, settings = tmp / "notebooks", tmp / "settings"
    notebooks.mkdir()
    nb = copy_chapter(notebooks / CHAPTER.name)
    for plugin, values in SETTINGS.items():
        path = settings / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values), encoding="utf-8")
    env = dict(os.environ, OMP_NUM_THREADS="1", PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
               JUPYTER_CONFIG_DIR=str(tmp / "config"), JUPYTER_DATA_DIR=str(tmp / "data"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(tmp / "workspaces"), IPYTHONDIR=str(tmp / "ipython"))
    env.pop("JUPYTER_PATH", None)
    specs = subprocess.run([jupyter, "kernelspec", "list", "--json"], env=env, timeout=60,
                           capture_output=True, text=True, check=True)
    spec = json.loads(specs.stdout)["kernelspecs"].get("python3")
    assert spec and Path(spec["resource_dir"]).is_relative_to(sys.prefix), (
        f"the python3 kernel is not the venv's ({sys.prefix}): {spec}")
    token, port = secrets.token_hex(16), free_port()
    # fmt: off
    cmd = [jupyter, "lab", "--no-browser", f"--port={port}", "--ServerApp.ip=127.0.0.1",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={notebooks}", "--ServerApp.open_browser=False",
           "--ServerApp.allow_root=True",
           # nothing goes online: no news feed, no update check, no PyPI extension manager
           "--LabApp.news_url=None",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly",
           # should pytest itself be killed, the kernel and then the server stop by themselves
           "--MappingKernelManager.cull_idle_timeout=600",
           "--MappingKernelManager.cull_connected=True",
           "--ServerApp.shutdown_no_activity_timeout=900"]
    # fmt: on
    log = tmp / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=notebooks, env=env, stdin=subprocess.DEVNULL,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_tail(log)}")
            request = urllib.request.Request(f"{base}/api/status",
                                             headers={"Authorization": f"token {token}"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer in {START_TIMEOUT_S} s:\n{log_tail(log)}")
            time.sleep(0.25)
        yield base, token, nb, tmp
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser(chromium):
    """The session's Chromium (tests/conftest.py), shared with test_browser.py."""
    return chromium


def is_local(url):
    parts = urlsplit(url)
    return parts.scheme in LOCAL_SCHEMES or parts.hostname in LOCAL_HOSTS


def guard_network(context, page):
    """Abort and report every request that would leave this machine; report failures."""
    problems = []

    def route(r):
        if is_local(r.request.url):
            r.continue_()
        else:
            problems.append(f"network request (aborted): {r.request.url[:120]}")
            r.abort()

    def on_failed(request):
        if is_local(request.url):
            problems.append(f"failed request: {request.url[:120]} ({request.failure})")

    def on_websocket(ws):
        if not is_local(ws.url):
            problems.append(f"websocket off this machine: {ws.url[:120]}")

    def on_console(msg):
        if msg.type == "error":
            problems.append(f"console error: {msg.text[:200]}")

    context.route("**/*", route)
    context.on("requestfailed", on_failed)
    page.on("websocket", on_websocket)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    return problems


def markdown_problems(page, nb, when):
    cells = page.evaluate(MARKDOWN_TEXT)
    n_markdown = sum(c["cell_type"] == "markdown" for c in nb["cells"])
    problems = []
    if len(cells) != n_markdown:
        problems.append(f"{when}: {len(cells)} markdown cells shown, {n_markdown} in the file")
    plain = [f"#{i}" for i, cell in enumerate(cells) if not cell["myst"]]
    if plain:
        problems.append(f"{when}: cells not rendered by jupyterlab-myst: {', '.join(plain)}")
    for i, cell in enumerate(cells):
        text = cell["text"]
        for raw in RAW_MYST:
            if raw in text:
                at = text.index(raw)
                context = " ".join(text[max(0, at - 40) : at + 40].split())
                problems.append(f"{when}: raw MyST {raw!r} in markdown cell #{i}: ...{context}...")
        problems += [f"{when}: directive not rendered in cell #{i}: {f}" for f in cell["fences"]]
    return problems


def math_and_citation_problems(page, nb):
    source = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    problems = []
    if "$" in source or "{math}" in source:
        n_katex = page.locator(".jp-MarkdownCell .myst .katex").count()
        if n_katex == 0:
            problems.append("the markdown has math, the page has no KaTeX")
        errors = page.locator(".jp-MarkdownCell .katex-error").all_text_contents()
        problems += [f"KaTeX error: {e[:80]}" for e in errors]
    text = " ".join(page.locator(".jp-MarkdownCell .myst").all_text_contents())
    keys = {k.strip() for role in source.split("{cite")[1:] for k in
            role.split("`")[1].split(",")} if "{cite" in source else set()
    problems += [f"citation {key} not shown" for key in sorted(keys) if key not in text]
    return problems


def run_all(page):
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    page.wait_for_function(RUN_FINISHED, timeout=RUN_TIMEOUT_MS, polling=500)
    prompts = page.evaluate(PROMPTS)
    idle = [f"#{i}" for i, p in enumerate(prompts) if not (p[:1] == "[" and p[1:-2].isdigit())]
    problems = [f"code cells that did not run: {', '.join(idle)}"] if idle else []
    errors = page.evaluate(ERRORS)
    return problems + [f"error output: {' '.join(text.split())[:300]}" for text in errors]


def slider_problems(page, nb):
    problems = []
    live = page.locator(".jp-OutputArea-output .widget-vbox").filter(
        has=page.locator("img.widget-image")).filter(has=page.locator(".widget-slider"))
    if any("widgets.slider(" in "".join(c["source"]) for c in nb["cells"]):
        try:  # the widget view renders after its output arrives
            live.first.wait_for(timeout=STEP_TIMEOUT_MS)
        except PlaywrightError:
            static = page.locator(".jp-OutputArea-output .lk-slider").count()
            return [f"the chapter makes a slider, the page shows no live widget ({static} static)"]
    for i in range(live.count()):
        img = live.nth(i).locator("img.widget-image").first
        handles = live.nth(i).locator(".widget-slider .noUi-handle[role=slider]")
        if handles.count() == 0:
            problems.append(f"live slider #{i}: no slider handle")
        for j in range(handles.count()):
            handle = handles.nth(j)
            handle.scroll_into_view_if_needed()
            page.wait_for_function(IMAGE_LOADED, arg=[img.element_handle(), ""])
            value = handle.get_attribute("aria-valuenow")
            top = handle.get_attribute("aria-valuemax")
            before, src = img.evaluate(IMAGE_STATE), img.get_attribute("src")
            handle.press("Home" if float(value) >= float(top) else "End")
            try:
                page.wait_for_function(IMAGE_LOADED, arg=[img.element_handle(), src])
            except PlaywrightError as exc:  # a timeout: the figure was not redrawn
                problems.append(f"live slider #{i} handle #{j}: image did not change "
                                f"({str(exc).splitlines()[0]})")
                continue
            after, moved = img.evaluate(IMAGE_STATE), handle.get_attribute("aria-valuenow")
            if moved == value:
                problems.append(f"live slider #{i} handle #{j}: value stayed {value}")
            if before is None or after is None or after.split()[1] == before.split()[1]:
                problems.append(f"live slider #{i} handle #{j}: same image bytes after the move")
    return problems


def test_chapter_in_jupyterlab(browser, lab):
    base, token, nb, tmp = lab
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(STEP_TIMEOUT_MS)
    problems = guard_network(context, page)
    try:
        page.goto(f"{base}/lab/tree/{CHAPTER.name}?token={token}", wait_until="domcontentloaded",
                  timeout=RUN_TIMEOUT_MS)
        try:
            page.wait_for_function(MARKDOWN_RENDERED, polling=250)
        except PlaywrightError as exc:  # report what is shown
            problems.append(f"markdown cells still unrendered: {str(exc).splitlines()[0]}")
        page.wait_for_selector('.jp-Notebook-ExecutionIndicator[data-status="idle"]',
                               timeout=RUN_TIMEOUT_MS)
        problems += markdown_problems(page, nb, "before running")
        problems += run_all(page)
        problems += markdown_problems(page, nb, "after running")
        problems += math_and_citation_problems(page, nb)
        problems += slider_problems(page, nb)
        shot = os.environ.get("LK_LAB_SCREENSHOT") or (str(tmp / "lab.png") if problems else "")
        if shot:
            page.evaluate(SHOW_THEOREM)
            page.screenshot(path=shot)
            if problems:
                problems.append(f"(screenshot: {shot})")
    finally:
        context.close()
    assert not problems, f"{CHAPTER.name} in JupyterLab:\n  " + "\n  ".join(problems)

