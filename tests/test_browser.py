"""The report site in a real browser: headless Chromium loads every page, and each page's
stylesheet, images and same-site links must load (no 404, no broken image, no missing
anchor).

Needs the Debian packages ``chromium`` (``chromium-driver`` is not required: the test
drives the browser with ``--dump-dom`` on a harness page, no WebDriver).  Skipped, with the
reason, when no Chromium is installed.  The site is served on 127.0.0.1 only; Chromium
runs with a fresh profile and without background networking.
"""

from __future__ import annotations

import functools
import html
import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main

REPO = Path(__file__).resolve().parent.parent
ENGINE = REPO / "specs" / "engine"
HARNESS = "/__harness__.html"

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
)


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


# CI (.ci/run) sets VFIO_MIGCHECK_REQUIRE_BROWSER=1: there a missing Chromium is a failure,
# not a skip, so the browser check cannot silently stop running.
if chromium() is None and os.environ.get("VFIO_MIGCHECK_REQUIRE_BROWSER") == "1":
    raise RuntimeError("Chromium is required here (VFIO_MIGCHECK_REQUIRE_BROWSER=1) but not installed")
pytestmark = pytest.mark.skipif(
    chromium() is None,
    reason="Chromium is not installed (Debian: apt-get install chromium)",
)

# Loads each page in an iframe, waits for its images, checks they decoded, that the
# stylesheet applied, and fetches every same-origin link (and finds its #anchor).
HARNESS_JS = """
const pages = %s;
async function loaded(img) {
  if (img.complete) return;
  await new Promise(r => { img.addEventListener('load', r); img.addEventListener('error', r); });
}
async function check(url) {
  const frame = document.createElement('iframe');
  frame.style.width = '1200px'; frame.style.height = '800px';
  const ready = new Promise(r => frame.addEventListener('load', r));
  frame.src = url;
  document.body.appendChild(frame);
  await ready;
  const doc = frame.contentDocument;
  const problems = [];
  if (!doc || !doc.querySelector('main h1')) problems.push('no <main><h1>: page did not load');
  const imgs = doc ? [...doc.images] : [];
  await Promise.all(imgs.map(loaded));
  for (const img of imgs) if (!img.naturalWidth) problems.push('broken image ' + img.getAttribute('src'));
  if (doc && frame.contentWindow.getComputedStyle(doc.body).maxWidth === 'none')
    problems.push('stylesheet not applied');
  const seen = new Set();
  for (const a of doc ? doc.querySelectorAll('a[href]') : []) {
    const u = new URL(a.getAttribute('href'), frame.contentWindow.location.href);
    if (u.origin !== location.origin) continue;
    const key = u.href;
    if (seen.has(key)) continue;
    seen.add(key);
    const res = await fetch(u.pathname);
    if (!res.ok) {
      problems.push('broken link ' + a.getAttribute('href') + ' (' + res.status + ')');
      continue;
    }
    if (u.hash && u.pathname.endsWith('.html')) {
      const target = new DOMParser().parseFromString(await res.text(), 'text/html');
      if (!target.getElementById(decodeURIComponent(u.hash.slice(1))))
        problems.push('missing anchor ' + a.getAttribute('href'));
    }
  }
  frame.remove();
  return {page: url, images: imgs.length, links: seen.size, problems: problems};
}
(async () => {
  const out = [];
  for (const p of pages) out.push(await check(p));
  document.getElementById('result').textContent = 'RESULT:' + JSON.stringify(out) + ':END';
})();
"""


class _Handler(http.server.SimpleHTTPRequestHandler):
    failures: list[str]
    harness: bytes

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if self.path == HARNESS:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(self.harness)))
            self.end_headers()
            self.wfile.write(self.harness)
            return
        super().do_GET()

    def send_error(self, code, message=None, explain=None):  # noqa: ANN001
        if self.path != "/favicon.ico":
            self.failures.append(f"{code} {self.path}")
        super().send_error(code, message, explain)

    def log_message(self, format, *args):  # noqa: A002, ANN001 - quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    # Request threads must not keep the test process alive (a browser may leave a
    # keep-alive connection open).
    daemon_threads = True
    block_on_close = False


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The committed reports/ when present (what reviewers see), else a small report."""
    if (REPO / "reports" / "index.html").is_file():
        return REPO / "reports"
    root = tmp_path_factory.mktemp("browser")
    specs = root / "specs"
    specs.mkdir()
    for name in ("tcommit-3.toml", "twophase-broken-invariant.toml"):
        shutil.copy(ENGINE / name, specs / name)
    old = Path.cwd()
    os.chdir(root)
    try:
        r = CliRunner().invoke(main, ["report", "specs", "-o", "out", "-q"], catch_exceptions=False)
    finally:
        os.chdir(old)
    assert r.exit_code == 0, r.output
    return root / "out"


@pytest.fixture(scope="module")
def server(site: Path) -> Iterator[tuple[str, list[str], type[_Handler]]]:
    failures: list[str] = []
    handler = type("Handler", (_Handler,), {"failures": failures, "harness": b""})
    httpd = _Server(("127.0.0.1", 0), functools.partial(handler, directory=str(site)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", failures, handler
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_chromium(args: list[str], profile: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    exe = chromium()
    assert exe is not None
    cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def test_every_page_loads_without_broken_links_or_images(site: Path, server, tmp_path: Path):
    base, failures, handler = server
    pages = sorted("/" + p.relative_to(site).as_posix() for p in site.rglob("*.html"))
    assert "/index.html" in pages
    handler.harness = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>harness</title></head><body>'
        '<pre id="result">running</pre><script>' + HARNESS_JS % json.dumps(pages) + "</script></body></html>"
    ).encode()
    proc = run_chromium(["--virtual-time-budget=120000", "--dump-dom", base + HARNESS], tmp_path / "profile")
    m = re.search(r"RESULT:(.*?):END", proc.stdout, re.S)
    assert m, f"the harness did not finish: {proc.stdout[-500:]} {proc.stderr[-500:]}"
    results = json.loads(html.unescape(m.group(1)))
    assert [r["page"] for r in results] == pages
    problems = [f"{r['page']}: {p}" for r in results for p in r["problems"]]
    assert not problems, problems
    assert not failures, failures
    index = next(r for r in results if r["page"] == "/index.html")
    assert index["links"] >= 5
    assert sum(r["images"] for r in results) >= 1


def test_index_renders_to_a_screenshot(server, tmp_path: Path):
    base, failures, _ = server
    shot = tmp_path / "index.png"
    args = ["--window-size=1300,1600", f"--screenshot={shot}", base + "/index.html"]
    proc = run_chromium(args, tmp_path / "p")
    assert shot.is_file(), proc.stderr[-500:]
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG") and len(data) > 10_000  # a blank page compresses far smaller
    assert not failures, failures


# Loads each page in an iframe as wide as a 1400 px window and reports, for its
# counterexample table, where the columns of the variables the violated property reads
# are (the table's own left edge is where a reader starts).
COLUMNS_JS = """
const pages = %s;
async function columns(url) {
  const frame = document.createElement('iframe');
  frame.style.width = '1400px'; frame.style.height = '900px'; frame.style.border = '0';
  const ready = new Promise(r => frame.addEventListener('load', r));
  frame.src = url;
  document.body.appendChild(frame);
  await ready;
  const doc = frame.contentDocument;
  const table = doc.querySelector('#counterexample table');
  const heads = table ? [...table.querySelectorAll('thead th')] : [];
  const out = {page: url, viewport: frame.contentWindow.innerWidth, marked: []};
  heads.forEach((th, i) => {
    if (!th.classList.contains('marked')) return;
    const r = th.getBoundingClientRect();
    out.marked.push({name: th.textContent, index: i, left: r.left, right: r.right});
  });
  frame.remove();
  return out;
}
(async () => {
  const out = [];
  for (const p of pages) out.push(await columns(p));
  document.getElementById('result').textContent = 'RESULT:' + JSON.stringify(out) + ':END';
})();
"""


def _pages_with_counterexamples(site: Path) -> list[str]:
    return sorted("/" + p.relative_to(site).as_posix() for p in (site / "specs").glob("*.html")
                  if 'id="counterexample"' in p.read_text() and "<table>" in p.read_text())


def test_the_variables_a_violated_property_reads_are_in_view_at_1400px(site: Path, server, tmp_path: Path):
    base, failures, handler = server
    pages = _pages_with_counterexamples(site)
    assert pages
    handler.harness = (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>columns</title></head><body>'
        '<pre id="result">running</pre><script>' + COLUMNS_JS % json.dumps(pages) + "</script></body></html>"
    ).encode()
    proc = run_chromium(["--window-size=1500,1000", "--virtual-time-budget=60000", "--dump-dom",
                         base + HARNESS], tmp_path / "profile")
    m = re.search(r"RESULT:(.*?):END", proc.stdout, re.S)
    assert m, f"the harness did not finish: {proc.stdout[-500:]} {proc.stderr[-500:]}"
    results = json.loads(html.unescape(m.group(1)))
    assert [r["page"] for r in results] == pages
    with_reads = [r for r in results if r["marked"]]
    assert len(with_reads) >= len(pages) - 1  # a deadlock reads no variable
    for r in with_reads:
        # the explaining columns come right after "#" and "action", and all of them fit
        assert [c["index"] for c in r["marked"]] == list(range(2, 2 + len(r["marked"]))), r
        assert all(0 <= c["left"] and c["right"] <= r["viewport"] for c in r["marked"]), r
        assert r["viewport"] == 1400
    assert not failures, failures


def test_a_counterexample_renders_to_a_screenshot_at_1400px(site: Path, server, tmp_path: Path):
    """The page scrolled to its counterexample, in a 1400 px window (headless Chromium does
    not follow a URL's #anchor for --screenshot, an iframe does)."""
    base, failures, handler = server
    pages = _pages_with_counterexamples(site)
    page = next((p for p in pages if "mutation-no-final-sync" in p), pages[0])
    handler.harness = (
        '<!DOCTYPE html><html><body style="margin:0"><iframe src="' + page + '#counterexample" '
        'style="border:0;width:1400px;height:1000px"></iframe></body></html>'
    ).encode()
    shot = tmp_path / "counterexample.png"
    proc = run_chromium(["--window-size=1400,1000", "--virtual-time-budget=8000", f"--screenshot={shot}",
                         base + HARNESS], tmp_path / "p")
    assert shot.is_file(), proc.stderr[-500:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 10_000
    assert not failures, failures
