"""A local HTTP server for the browser tests and bench: pages that report what happens to them.

Each page tells the server (``/report``) when it loads, resizes, is hidden or shown, is closed
(``pagehide``) and when its button is clicked, so tests see the browser's effects through a
channel that is not the agent's word. The server also answers as an HTTP proxy (absolute-form
request targets), so a test can see the browser's traffic go through it.
"""

from __future__ import annotations

import html
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.waiting import wait_until

PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body {{ margin: 0; }} #press {{ position: fixed; inset: 0; width: 100%; height: 100%; font-size: 40px; }}</style>
</head><body>
<p id="marker">page {name} marker</p>
<button id="press">press {name}</button>
<div style="height: 3000px"></div>
<script>
function report(event, extra) {{
  const query = new URLSearchParams(Object.assign({{name: "{name}", event: event}}, extra || {{}}));
  navigator.sendBeacon("/report?" + query.toString());
}}
const size = () => ({{width: innerWidth, height: innerHeight}});
report("load", size());
addEventListener("resize", () => report("resize", size()));
document.addEventListener("visibilitychange", () => report(document.visibilityState));
addEventListener("pagehide", () => report("pagehide"));
document.getElementById("press").addEventListener("click", () => fetch("/clicked?name={name}"));
document.body.appendChild(Object.assign(document.createElement("p"), {{id: "added", textContent: "added by script"}}));
</script></body></html>
"""


class PageServer:
    """``ThreadingHTTPServer`` on 127.0.0.1 with an event log the tests wait on."""

    def __init__(self) -> None:
        self.events: list[dict[str, str]] = []
        self.requests: list[str] = []  # request targets as received (absolute when proxied)
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                owner._record_request(self.path)
                parts = urllib.parse.urlsplit(self.path)
                query = dict(urllib.parse.parse_qsl(parts.query))
                status, content_type, body, headers = owner.answer(parts.path, query)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def _record_request(self, target: str) -> None:
        with self._lock:
            self.requests.append(target)

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, str, bytes, dict[str, str]]:
        html_type = "text/html; charset=utf-8"
        if path in {"/report", "/clicked"}:
            event = dict(query)
            if path == "/clicked":
                event["event"] = "clicked"
            with self._lock:
                self.events.append(event)
            return 204, "text/plain", b"", {}
        if path.startswith("/page/"):
            name = html.escape(path.removeprefix("/page/"))
            return 200, html_type, PAGE.format(title=name, name=name).encode(), {}
        if path == "/redirect":
            return 302, "text/plain", b"", {"Location": query.get("to", "/page/redirected")}
        if path == "/missing":
            return 404, html_type, b"<!DOCTYPE html><title>missing</title><p>no such page</p>", {}
        if path == "/latin1":
            body = "<!DOCTYPE html><html><head><title>latin</title></head><body><p>café</p></body></html>"
            return 200, "text/html; charset=iso-8859-1", body.encode("latin-1"), {}
        if path == "/big":
            size = int(query.get("bytes", str(1024 * 1024)))
            row = "<p>" + "x" * 95 + "</p>\n"
            body = "<!DOCTYPE html><html><head><title>big</title></head><body>\n" + row * (size // len(row))
            return 200, html_type, (body + "</body></html>").encode(), {}
        if path == "/probe":  # a page that tries to reach a debugging port from inside the browser
            return 200, html_type, PROBE.encode(), {}
        return 404, "text/plain", b"not found", {}

    def named(self, name: str, event: str | None = None) -> Iterator[dict[str, str]]:
        with self._lock:
            seen = list(self.events)
        return (e for e in seen if e.get("name") == name and (event is None or e.get("event") == event))

    def wait_for(self, name: str, event: str, timeout: float = 10.0, **fields: str) -> dict[str, str]:
        def found() -> dict[str, str] | None:
            for entry in self.named(name, event):
                if all(entry.get(key) == value for key, value in fields.items()):
                    return entry
            return None

        return wait_until(found, timeout=timeout, what=f"{name} to report {event} {fields or ''}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# Ports a debugging endpoint could listen on; each fetch's outcome is reported.
PROBE = """<!DOCTYPE html><title>probe</title><script>
Promise.all([9222, 9229, 9333].map(port =>
  fetch("http://127.0.0.1:" + port + "/json/version").then(r => r.status, e => "refused")
)).then(results => navigator.sendBeacon("/report?" + new URLSearchParams(
  {name: "probe", event: "probed", results: JSON.stringify(results)})));
</script>"""
