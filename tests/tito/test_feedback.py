"""Feedback pages: one self-contained HTML page per notebook, read back from a real headless browser.

Chromium is driven over its DevTools protocol on a pipe (`--remote-debugging-pipe`: no port, no
network), so the test reads the text the browser actually rendered (`document.body.innerText`) and
every request the page made.
"""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_grade import ADD, make_project, make_student, release_of  # noqa: E402

from tito.teaching.feedback import page_names, render  # noqa: E402
from tito.teaching.grade import CellResult, NotebookResult, grade  # noqa: E402
from tito.teaching.late import LatePolicy  # noqa: E402

CANDIDATES = ("/usr/bin/chromium", *(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")))
CHROMIUM = next((p for p in CANDIDATES if p and os.path.exists(p)), None)
needs_browser = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install chromium)")


class Browser:
    """Headless Chromium over the DevTools protocol on fds 3 and 4."""

    def __init__(self, profile: Path):
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()

        def fds():  # the protocol reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_browser_r, 3)
            os.dup2(from_browser_w, 4)

        self.process = subprocess.Popen(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=fds, pass_fds=(3, 4), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next = 0
        self.events = []

    def _receive(self, deadline):
        while b"\0" not in self._buffer:
            if time.time() > deadline:
                raise TimeoutError("Chromium did not answer")
            import select

            ready, _, _ = select.select([self._from_browser], [], [], 0.5)
            if ready:
                chunk = os.read(self._from_browser, 1 << 16)
                if not chunk:
                    raise RuntimeError("Chromium closed the pipe")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None, timeout=30):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method, session, timeout=30):
        deadline = time.time() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and event.get("sessionId") == session:
                    self.events.remove(event)
                    return event
            self.events.append(self._receive(deadline))

    def render(self, page: Path) -> dict:
        """Open `page`; its rendered text, title, whether any script ran, and every URL it requested."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        self.send("Network.enable", session=session)
        self.send("Page.enable", session=session)
        self.events.clear()
        self.send("Page.navigate", {"url": page.resolve().as_uri()}, session=session)
        self.wait_for("Page.loadEventFired", session)

        def evaluate(expression):
            return self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True},
                             session=session)["result"].get("value")

        seen = {"text": evaluate("document.body.innerText"), "title": evaluate("document.title"),
                "scripts_ran": evaluate("typeof window.pwned !== 'undefined'"),
                "images": evaluate("document.images.length")}
        seen["requests"] = [e["params"]["request"]["url"] for e in self.events
                            if e.get("method") == "Network.requestWillBeSent"]
        self.send("Target.closeTarget", {"targetId": target})
        return seen

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


HOSTILE = ('<script>window.pwned = 1</script><img src="http://127.0.0.1:9/x.png">'
           '<link rel="stylesheet" href="https://example.com/x.css"></pre><b>bold</b>')


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """Two submissions in nbgrader's layout, graded with --feedback and a 10%-per-day deadline."""
    root = tmp_path_factory.mktemp("feedback")
    project = make_project(root / "project")
    release = release_of(project)
    submitted = root / "submitted"
    chatty = ADD.replace("    return a + b", "    print(f'adding {a} and {b}')\n    return a + b")
    alice = make_student(release, submitted / "alice" / "ps2", "calc", add=chatty)
    hostile = ADD.replace("    return a + b", f"    print({HOSTILE!r})\n    return a - b")
    bob = make_student(release, submitted / "bob" / "ps2", "calc", add=hostile)
    (bob.parent / "timestamp.txt").write_text("2026-03-03 10:00:00.000000 UTC\n")  # two started days late
    (alice.parent / "timestamp.txt").write_text("2026-03-01 20:00:00 UTC\n")
    folder = root / "pages"
    late = LatePolicy.parse("2026-03-01T23:59:00+00:00", "10%")
    results = grade(project, "02_calc", [alice, bob], jobs=2, timeout=60, feedback=folder, late=late,
                    log=lambda message: None)
    return results, folder


def test_pages_are_written_one_per_submission(graded):
    results, folder = graded
    assert sorted(p.name for p in folder.iterdir()) == ["alice__ps2__calc.html", "bob__ps2__calc.html"]
    for page in folder.iterdir():
        text = page.read_text()
        assert "<script" not in text and "<img" not in text and "<link" not in text and "<b>" not in text
        assert "Content-Security-Policy" in text and "default-src 'none'" in text


@needs_browser
def test_a_headless_browser_renders_the_feedback(graded, tmp_path):
    results, folder = graded
    browser = Browser(tmp_path / "profile")
    try:
        alice = browser.render(folder / "alice__ps2__calc.html")
        bob = browser.render(folder / "bob__ps2__calc.html")
    finally:
        browser.close()

    assert alice["title"] == "Feedback: calc.ipynb (02_calc)"
    text = alice["text"]
    assert "Total: 6 / 6 points" in text
    for grade_id in ("test-add", "test-scaler", "test-add-arrays"):
        assert grade_id in text
    assert "adding 2 and 3" in text  # the student's own output, under the graded cell that printed it
    assert "on time" in text and "Late penalty" not in text

    text = bob["text"]
    assert "Total: 3 / 6 points" in text
    assert "AssertionError: add(2, 3) should be 5 (at calc_dev.py:36)" in text
    assert "failed" in text and "passed" in text
    assert "2 day(s) after the deadline" in text
    assert "Late penalty: -0.6" in text and "Final score: 2.4 / 6" in text
    assert "<script>window.pwned = 1</script>" in text  # shown as text, never run or loaded
    assert bob["scripts_ran"] is False and bob["images"] == 0
    for seen in (alice, bob):
        assert [url for url in seen["requests"] if not url.startswith("file://")] == [], seen["requests"]


def test_output_is_capped_and_names_are_distinct(tmp_path):
    long = CellResult("test-x", 0, 1, "failed", "boom", "y" * 50_000)
    result = NotebookResult(Path("/a/s1/nb.ipynb"), [long])
    assert len(render(result, "02_calc")) < 60_000
    assert page_names([Path("/a/s1/nb.ipynb"), Path("/a/s2/nb.ipynb")]) == ["s1__nb.html", "s2__nb.html"]
    assert page_names([Path("/a/nb.ipynb"), Path("/b/nb.ipynb")]) == ["a__nb.html", "b__nb.html"]


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
