"""The documentation site: `mkdocs build --strict` passes, and the built pages render in a browser.

- `test_api_pages_list_every_public_name` (always runs): every name that `ssldyn/__init__.py`
  re-exports has a `::: ssldyn.NAME` block in `docs/api/`, and the sub-package pages expand their
  members (see `docs/hooks.py`).
- `test_strict_build` builds the site into a temporary directory with `mkdocs build --strict` (any
  warning fails: broken links, missing references, docstring warnings). It is skipped when MkDocs
  is not installed, as in CI, which installs only `.[test]`; install `.[docs]` to run it.
- `test_rendered_in_chromium` opens the landing page, the API page of `solve` and the esser-mnist
  gallery page of the built site in headless Chromium, driven through the DevTools protocol over
  `--remote-debugging-pipe`. After the page's load event and `MathJax.startup.promise`, it checks
  in the live page that equations rendered (every `.arithmatex` element written by
  pymdownx.arithmatex holds a MathJax `mjx-container`, at least one per page that has maths, and no
  raw `\\(`, `\\[` or `$$` TeX is left in the text outside code) and that every figure loaded
  (`img.complete` and `img.naturalWidth > 0`, i.e. the browser decoded it). MathJax is vendored in
  `docs/javascripts/mathjax/`, so this works offline. It also opens one notebook page
  (directpred) and checks that the `$...$` maths of its markdown cells was typeset. Skipped unless
  `/usr/bin/chromium` exists.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
DOC_PACKAGES = ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python", "mkdocs_jupyter")
SUBPACKAGES = ("data", "scaling", "sparse", "byol", "head", "experiments")


def _missing_doc_packages() -> list[str]:
    missing = []
    for name in DOC_PACKAGES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(name)
    return missing


def _top_level_names() -> set[str]:
    """Names re-exported by `ssldyn/__init__.py` (`from .x import a as a`), read without importing;
    those re-exported from a documented sub-package (`from .scaling import ...`) are on its page."""
    tree = ast.parse((ROOT / "ssldyn" / "__init__.py").read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module and node.module not in SUBPACKAGES:
            names.update(a.asname or a.name for a in node.names if not (a.asname or a.name).startswith("_"))
    return names - set(SUBPACKAGES)


def test_api_pages_list_every_public_name():
    text = "\n".join(p.read_text() for p in sorted((ROOT / "docs" / "api").glob("*.md")))
    documented = set(re.findall(r"^::: ssldyn\.(\w+)\s*$", text, re.M))
    missing = sorted(_top_level_names() - documented)
    assert not missing, f"public names without an API entry in docs/api/*.md: {missing}"
    for sub in SUBPACKAGES:
        assert f"<!-- api-members: ssldyn.{sub} -->" in text, f"docs/api/{sub}.md does not list its members"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    missing = _missing_doc_packages()
    if missing:
        pytest.skip(f"MkDocs is not installed (missing {', '.join(missing)}): "
                    f"pip install '.[docs]' to build and check the documentation site")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-f", str(ROOT / "mkdocs.yml"),
                           "-d", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, f"mkdocs build --strict failed:\n{proc.stdout}\n{proc.stderr}"
    return out


def test_strict_build(site):
    for page in ("index.html", "api/solve/index.html", "gallery/esser-mnist/index.html",
                 "notebooks/esser_mnist/index.html", "javascripts/mathjax/tex-svg.js"):
        assert (site / page).is_file(), page
    html = (site / "api" / "solve" / "index.html").read_text()
    assert 'id="ssldyn.solve"' in html and 'class="arithmatex"' in html
    for png in (ROOT / "docs" / "gallery").glob("*/*.png"):
        assert (site / png.relative_to(ROOT / "docs")).is_file(), png


class _DevTools:
    """A minimal Chrome DevTools Protocol client over `--remote-debugging-pipe` (fd 3 in, fd 4 out)."""

    def __init__(self, user_data_dir: Path):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()

        def child_fds():  # in the child: the pipe ends become fds 3 and 4 (copied first: they may be 3 or 4)
            a, b = os.dup(to_chrome_r), os.dup(from_chrome_w)
            os.dup2(a, 3)
            os.dup2(b, 4)
            os.set_inheritable(3, True)
            os.set_inheritable(4, True)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={user_data_dir}", "--remote-debugging-pipe", "about:blank"]
        self.proc = subprocess.Popen([str(CHROMIUM), *flags], preexec_fn=child_fds, close_fds=False,  # other fds are close-on-exec
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buf, self._id, self.events = b"", 0, []

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self._r], [], [], left)[0]:
                raise TimeoutError("no answer from Chromium")
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 20.0):
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            reply = self._read(deadline)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            self.events.append(reply)

    def wait_event(self, method: str, session: str, timeout: float = 20.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method and ev.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def close(self):
        try:
            self.call("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._w)
        os.close(self._r)


# Runs in the page once it has loaded: waits for MathJax and for every image, then reports.
_PROBE = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  if (window.MathJax && MathJax.typesetPromise) { await MathJax.typesetPromise(); }
  await Promise.all(Array.from(document.images).map(img => img.complete ? null :
      new Promise(done => { img.addEventListener('load', done); img.addEventListener('error', done); })));
  const content = document.querySelector('.md-content').cloneNode(true);
  content.querySelectorAll('pre, code, mjx-container, script, style').forEach(e => e.remove());
  const maths = Array.from(document.querySelectorAll('.md-content .arithmatex'));
  return JSON.stringify({
    mathjax: typeof MathJax !== 'undefined' && !!MathJax.version,
    arithmatex: maths.length,
    rendered: maths.filter(e => e.querySelector('mjx-container svg')).length,
    containers: document.querySelectorAll('mjx-container').length,
    notebook_maths: document.querySelectorAll('.jp-MarkdownOutput mjx-container').length,
    text: content.innerText,
    images: Array.from(document.querySelectorAll('.md-content img')).map(
        img => ({src: img.getAttribute('src'), complete: img.complete, width: img.naturalWidth})),
  });
})()
"""


def test_rendered_in_chromium(site, tmp_path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not found: the browser check of the built site is optional "
                    "(apt-get install chromium to run it)")
    pages = {"landing": "index.html", "solve API": "api/solve/index.html",
             "gallery": "gallery/esser-mnist/index.html", "notebook": "notebooks/directpred/index.html"}
    browser = _DevTools(tmp_path / "chromium-profile")
    try:
        browser.call("Browser.getVersion")
        reports = {}
        for label, page in pages.items():
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            browser.call("Page.enable", session=session)
            browser.call("Page.navigate", {"url": (site / page).as_uri()}, session=session)
            browser.wait_event("Page.loadEventFired", session)
            result = browser.call("Runtime.evaluate", {"expression": _PROBE, "awaitPromise": True,
                                                        "returnByValue": True}, session=session, timeout=30)
            assert "exceptionDetails" not in result, (label, result)
            reports[label] = json.loads(result["result"]["value"])
            browser.call("Target.closeTarget", {"targetId": target})
    finally:
        browser.close()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)

    for label, rep in reports.items():
        assert rep["mathjax"], f"{label}: MathJax did not load"
        if label == "notebook":  # its code cells are text here, so only count the typeset maths
            continue
        assert rep["rendered"] == rep["arithmatex"], f"{label}: {rep['arithmatex'] - rep['rendered']} equations not typeset"
        for raw in ("\\(", "\\)", "\\[", "\\]", "$$"):
            assert raw not in rep["text"], f"{label}: raw TeX {raw!r} left in the page text"
        for img in rep["images"]:
            assert img["complete"] and img["width"] > 0, f"{label}: figure {img['src']} did not load"
    assert reports["landing"]["rendered"] >= 3 and reports["solve API"]["rendered"] >= 2
    assert len(reports["gallery"]["images"]) >= 1
    # notebook markdown cells keep Jupyter's $...$, typeset by the same MathJax (docs/javascripts/mathjax-config.js)
    assert reports["notebook"]["notebook_maths"] >= 5
