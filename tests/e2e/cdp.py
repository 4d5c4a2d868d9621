"""Headless Debian Chromium driven over the Chrome DevTools Protocol (``websockets``, no extra packages).

Clicks and typing are real input events (``Input.dispatchMouseEvent`` / ``Input.insertText``), so React
widgets such as the connection-type select see what a person's mouse and keyboard would produce.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import requests

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--window-size=1400,1100",
)


def chromium_binary() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Page:
    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=64 << 20, open_timeout=30)
        self._id = 0
        self._replies: dict[int, dict[str, Any]] = {}
        self._events: list[dict[str, Any]] = []
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {}
        self._dispatching = False

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        """Call a CDP method and return its result; events read meanwhile go to their handlers."""
        self._id += 1
        msg_id = self._id
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while msg_id not in self._replies:
            msg = json.loads(self.ws.recv(timeout=60))
            if "id" in msg:
                self._replies[int(msg["id"])] = msg
            elif msg.get("method") in self._handlers:
                self._events.append(msg)
        msg = self._replies.pop(msg_id)
        self._dispatch()
        if "error" in msg:
            raise RuntimeError(f"{method}: {msg['error']}")
        return dict(msg.get("result") or {})

    def _dispatch(self) -> None:
        # Handlers may call send() themselves: replies are kept by id, so nesting cannot lose one.
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._events:
                event = self._events.pop(0)
                self._handlers[event["method"]](dict(event.get("params") or {}))
        finally:
            self._dispatching = False

    def on(self, event: str, handler: Callable[[dict[str, Any]], None]) -> None:
        self._handlers[event] = handler

    def rewrite_request_bodies(self, url_pattern: str, rewrite: Callable[[str], str]) -> list[str]:
        """Pause requests matching ``url_pattern`` (CDP ``Fetch``), pass their bodies through ``rewrite``.

        Returns the list the rewritten bodies are appended to. A paused request is released the next
        time this page talks to the browser (any ``js``/``wait`` poll does).
        """
        rewritten: list[str] = []

        def paused(params: dict[str, Any]) -> None:
            request = params.get("request") or {}
            body = request.get("postData")
            if body is None and request.get("postDataEntries"):
                body = "".join(
                    base64.b64decode(e.get("bytes", "")).decode() for e in request["postDataEntries"]
                )
            if body is None:
                self.send("Fetch.continueRequest", requestId=params["requestId"])
                return
            new = rewrite(body)
            rewritten.append(new)
            self.send(
                "Fetch.continueRequest",
                requestId=params["requestId"],
                postData=base64.b64encode(new.encode()).decode(),
            )

        self.on("Fetch.requestPaused", paused)
        self.send("Fetch.enable", patterns=[{"urlPattern": url_pattern, "requestStage": "Request"}])
        return rewritten

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JS failed: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def goto(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait(self, what: str, expression: str, timeout: float = 60) -> Any:
        """Poll a JS expression until truthy (bounded); a DOM node counts as ``True``.

        ``returnByValue`` serialises a DOM node as ``{}``, which Python finds falsy: without the coercion a
        wait for ``document.querySelector(...)`` never ends even when the element is there.
        """
        probe = f"(() => {{ const v = ({expression}); return v instanceof Node ? true : v; }})()"
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            try:
                value = self.js(probe)
            except RuntimeError:
                value = None
            if value:
                return value
            time.sleep(0.3)
        raise TimeoutError(f"page never showed {what}; body text: {self.text()[:2000]!r}")

    def text(self) -> str:
        return str(self.js("document.body ? document.body.innerText : ''") or "")

    def click_at(self, expression: str, timeout: float = 15) -> None:
        """Click the centre of the element ``expression`` evaluates to, once a click there would reach it.

        The element is scrolled into view, and the click waits (bounded) until the element is laid out,
        stands still (accordions and dialogs animate) and the topmost element at its centre is it or
        inside it: while a modal closes, Chakra keeps ``pointer-events: none`` on the body for a moment
        and a real mouse click would go nowhere.
        """
        probe = f"""(() => {{ const el = {expression}; if (!el) return 'missing';
            el.scrollIntoView({{block: 'center', inline: 'center', behavior: 'instant'}});
            const r = el.getBoundingClientRect(); if (!r.width || !r.height) return 'hidden';
            const x = r.x + r.width / 2, y = r.y + r.height / 2, top = document.elementFromPoint(x, y);
            if (!top || !(el === top || el.contains(top) || top.contains(el) && top.closest('label')))
                return 'covered by ' + (top ? top.outerHTML.slice(0, 200) : 'nothing');
            return [x, y]; }})()"""
        deadline = time.monotonic() + timeout
        previous: Any = None
        while True:
            try:
                box = self.js(probe)
            except RuntimeError as exc:
                box = str(exc)
            if isinstance(box, list) and box == previous:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"cannot click ({box}): {expression}")
            if isinstance(box, str) and box.startswith("covered"):
                # e.g. the tooltip of the last button hovered: move the pointer away so it closes
                self.send("Input.dispatchMouseEvent", type="mouseMoved", x=1, y=1)
            previous = box
            time.sleep(0.15)
        x, y = box
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.send("Input.dispatchMouseEvent", type=kind, x=x, y=y, button="left", clickCount=1)

    def type_into(self, expression: str, text: str) -> None:
        """Focus an input, select what it holds and type ``text`` over it."""
        self.click_at(expression)
        self.js(f"(() => {{ const el = {expression}; el.focus(); if (el.select) el.select(); }})()")
        self.send("Input.insertText", text=text)

    def key(self, key: str, code: int) -> None:
        for kind in ("keyDown", "keyUp"):
            self.send(
                "Input.dispatchKeyEvent",
                type=kind,
                key=key,
                code=key,
                windowsVirtualKeyCode=code,
                nativeVirtualKeyCode=code,
            )

    def settle(self, timeout: float = 5) -> bool:
        """Wait (bounded, best effort) until no finite CSS/Web animation runs: accordions and dialogs
        animate their height and position, a screenshot taken meanwhile shows half-open panels."""
        running = """document.getAnimations().filter(a => a.playState === 'running'
            && a.effect && a.effect.getComputedTiming().iterations !== Infinity).length"""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.js(running):
                return True
            time.sleep(0.1)
        return False

    def screenshot(self, path: Path) -> Path:
        self.settle()
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        self.ws.close()


@contextmanager
def chromium(log: Path) -> Iterator[Page]:
    binary = chromium_binary()
    assert binary, "chromium not found"
    profile = Path(tempfile.mkdtemp(prefix="celonis-chromium-"))
    log.parent.mkdir(parents=True, exist_ok=True)
    handle = log.open("wb")
    proc = subprocess.Popen(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-port=0", "about:blank"],
        stdout=handle,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    page: Page | None = None
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"chromium did not start: {log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        ws_url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
        page = Page(ws_url)
        page.send("Page.enable")
        page.send("Runtime.enable")
        page.send(
            "Emulation.setDeviceMetricsOverride", width=1400, height=1100, deviceScaleFactor=1, mobile=False
        )
        yield page
    finally:
        if page is not None:
            with suppress(Exception):
                page.close()
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        handle.close()
        shutil.rmtree(profile, ignore_errors=True)
