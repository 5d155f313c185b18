"""A headless Chromium driven over the DevTools protocol on a pipe (no library, no port).

``--dump-dom`` cannot set a viewport below Chromium's 500 px minimum window width nor press
keys; the protocol can: ``Emulation.setDeviceMetricsOverride`` gives a 400 px phone, and
``Input.dispatchKeyEvent`` presses Enter on a focused button. Messages are JSON separated by
NUL bytes on file descriptors 3 (commands) and 4 (replies) of the browser.
"""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


class Browser:
    """One Chromium with one page; ``open(url, width)`` loads it at that viewport width."""

    def __init__(self, exe: str, profile: Path, timeout: float = 60.0):
        self.timeout = timeout
        cmd_r, cmd_w = os.pipe()
        out_r, out_w = os.pipe()

        def child() -> None:  # the browser reads fd 3 and writes fd 4
            a = fcntl.fcntl(cmd_r, fcntl.F_DUPFD, 10)
            b = fcntl.fcntl(out_w, fcntl.F_DUPFD, 10)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [exe, *FLAGS, "--remote-debugging-pipe", f"--user-data-dir={profile}",
             "about:blank"], pass_fds=(3, 4), preexec_fn=child,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(cmd_r)
        os.close(out_w)
        self._w = os.fdopen(cmd_w, "wb", buffering=0)
        self._r = os.fdopen(out_r, "rb", buffering=0)
        self._buf, self._id, self._events = b"", 0, []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target,
                                 flatten=True)["sessionId"]
        self.page("Page.enable")
        self.page("Runtime.enable")

    def _read(self) -> dict:
        while b"\0" not in self._buf:
            chunk = self._r.read(1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self._buf += chunk
        msg, self._buf = self._buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method: str, session: str | None = None, **params: Any) -> dict:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params}
        if session:
            msg["sessionId"] = session
        self._w.write(json.dumps(msg).encode() + b"\0")
        while True:
            reply = self._read()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._events.append(reply)

    def page(self, method: str, **params: Any) -> dict:
        return self.call(method, self.session, **params)

    def _wait(self, method: str) -> dict:
        end = time.monotonic() + self.timeout
        while time.monotonic() < end:
            for i, m in enumerate(self._events):
                if m.get("method") == method:
                    return self._events.pop(i)
            self._events.append(self._read())
        raise TimeoutError(f"no {method} within {self.timeout} s")

    def open(self, url: str, width: int, height: int = 900) -> None:
        self.page("Emulation.setDeviceMetricsOverride", width=width, height=height,
                  deviceScaleFactor=1, mobile=False)
        for target in ("about:blank", url):  # a fragment change alone would not load
            self._events.clear()
            self.page("Page.navigate", url=target)
            self._wait("Page.loadEventFired")

    def js(self, expression: str) -> Any:
        """The value of a JavaScript expression on the page (JSON-serialisable)."""
        out = self.page("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in out:
            raise RuntimeError(f"page error: {out['exceptionDetails'].get('text')} "
                               f"{out['exceptionDetails'].get('exception', {}).get('description', '')}")
        return out["result"].get("value")

    def settle(self, ms: int = 50) -> None:
        """Let queued tasks run (a hashchange after a click on a fragment link)."""
        self.page("Runtime.evaluate", awaitPromise=True,
                  expression=f"new Promise(function (r) {{ setTimeout(r, {ms}); }})")

    def errors(self) -> list[str]:
        """Uncaught exceptions the page threw so far."""
        return [json.dumps(m["params"]["exceptionDetails"])[:500] for m in self._events
                if m.get("method") == "Runtime.exceptionThrown"]

    def press_enter(self) -> None:
        """Press and release Enter on the focused element."""
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
               "nativeVirtualKeyCode": 13}
        self.page("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        self.page("Input.dispatchKeyEvent", type="keyUp", **key)

    def screenshot(self, path: Path) -> None:
        import base64

        data = self.page("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._w.close()
        self._r.close()
