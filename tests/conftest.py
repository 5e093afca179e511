import os
import sys
from pathlib import Path

import pytest

# tests/ holds small helpers (nbtools) that the test modules import.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def chromium():
    """One headless Chromium (Debian's, driven by Playwright) for every browser test of the
    session: test_browser.py and test_lab.py share it, since Playwright's sync API cannot run
    twice at once in one process. Missing, it fails with CI=true and skips locally."""
    from test_browser import CHROMIUM_ARGS, unavailable

    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        unavailable(f"playwright cannot be imported ({exc}): pip install playwright")
    default = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
    candidates = [os.environ["LK_CHROMIUM"]] if os.environ.get("LK_CHROMIUM") else default
    exe = next((c for c in candidates if os.path.isfile(c) and os.access(c, os.X_OK)), None)
    if exe is None:
        where = ", ".join(candidates)
        unavailable(
            f"no Chromium at {where}; install Debian's chromium: apt-get install -y chromium"
        )
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=exe, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()
