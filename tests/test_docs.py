"""The documentation site builds offline, and each page renders in headless Chromium with its title, code, figures and
maths, with no network beyond the local server."""
import http.server
import shutil
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds the whole site and drives a browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--no-first-run", "--disable-sync"]
# Reference pages (library API, the command line) need no figure; every other numbered notebook is a chapter and must
# show at least one.
REFERENCE = {"00_config", "12_cli"}
PROSE_ONLY = {"glossary"}  # definitions and links: no code, no figure
PAGES = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb"))


@pytest.fixture(scope="module")
def site():
    r = subprocess.run([sys.executable, "tools/build_docs.py", "--check"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    docs = ROOT / "_docs"
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(docs)))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield docs, f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM: pytest.fail("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS[1:])
        yield b
        b.close()


def test_every_notebook_has_a_page(site):
    docs, _ = site
    assert {p.stem for p in docs.glob("*.html")} >= set(PAGES)


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_title_code_and_figures(site, browser, page):
    docs, url = site
    pg = browser.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.goto(f"{url}/{page}.html", wait_until="load")
    nb_title = pg.locator("h1").first.inner_text().strip()
    assert nb_title and nb_title in pg.title()
    assert page in PROSE_ONLY or pg.locator("div.sourceCode, pre code").count() > 0, "no code on the page"
    figures = pg.evaluate("Array.from(document.images).filter(i => !i.src.startsWith('http')).map(i => i.naturalWidth)")
    if page not in REFERENCE | PROSE_ONLY and page != "index":
        assert figures and all(w > 100 for w in figures), f"{page}: no figure rendered ({figures})"
    assert not errors, errors
    pg.close()


@pytest.mark.parametrize("page", ["05_sft", "12_cli"])
def test_code_and_outputs_fit_the_text_column_at_laptop_width(site, browser, page):
    "At 1366 px (a common laptop), no code block or output scrolls sideways, and the text column is wider than 800 px."
    _, url = site
    pg = browser.new_page(viewport={"width": 1366, "height": 768})
    pg.goto(f"{url}/{page}.html", wait_until="load")
    column = pg.evaluate("document.querySelector('main').getBoundingClientRect().width")
    wide = pg.evaluate("Array.from(document.querySelectorAll('main pre')).filter(p => p.scrollWidth > p.clientWidth + 1)"
                       ".map(p => p.innerText.slice(0, 80))")
    pg.close()
    assert column > 800, f"the text column is {column:.0f} px wide"
    assert not wide, f"{len(wide)} blocks scroll sideways, e.g. {wide[:3]}"


def test_maths_renders_with_no_network(site, browser):
    """Every page with maths typesets it from the site's own copy of KaTeX: requests anywhere but the local server are
    refused, and no raw `\\(` or `\\[` delimiter is left in the text once the page has loaded."""
    docs, url = site
    maths = sorted(p.stem for p in docs.glob("*.html") if "site_libs/katex/katex.min.js" in p.read_text())
    assert "08_dpo" in maths and len(maths) >= 5, maths  # the DPO objective, and the other chapters' formulas
    assert not [p.name for p in docs.glob("*.html") if "cdn.jsdelivr.net/npm/katex" in p.read_text()]
    ctx = browser.new_context()
    refused = []
    def local_only(route):
        if route.request.url.startswith(url): route.continue_()
        else: refused.append(route.request.url); route.abort()
    ctx.route("**/*", local_only)
    raw = {}
    for page in maths:
        pg = ctx.new_page()
        pg.goto(f"{url}/{page}.html", wait_until="load")
        pg.wait_for_function("document.querySelectorAll('main .katex').length > 0", timeout=15_000)
        text = pg.evaluate("(() => { const m = document.querySelector('main').cloneNode(true);"
                           " m.querySelectorAll('pre, code, .katex').forEach(e => e.remove()); return m.innerText; })()")
        left = [d for d in ("\\(", "\\[") if d in text]
        if left: raw[page] = (left, text[max(0, text.find(left[0]) - 60):text.find(left[0]) + 80])
        pg.close()
    ctx.close()
    assert not raw, f"raw TeX left on the page: {raw}"
    assert not [u for u in refused if "katex" in u], refused
