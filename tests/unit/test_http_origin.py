"""Finding 1 of issue 11: a web page in the desktop's browser cannot drive the agent.

Against a real agent in --insecure-no-auth mode (where a page needed nothing else): CORS simple
requests (text/plain, forms, multipart, typeless, sendBeacon) and DNS-rebinding Hosts are refused,
seen by the file the command would have written and the raw answers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import RunningAgent, start_agent
from tests.displays import unused_display
from tests.raw_http import exchange, port_of, request
from tests.unit.test_exec import agent_env


@pytest.fixture(scope="module")
def open_agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningAgent]:
    """--insecure-no-auth: the mode in which a page in the VM's browser needed nothing else."""
    running = start_agent(
        agent_env(),
        tmp_path_factory.mktemp("edge-open"),
        "--display",
        unused_display(),
        "--allowed-hosts",
        "agent.internal,.fleet.example",
        "--advertise-url",
        "http://vm-17.corp.example:8000",
        auth=False,
    )
    yield running
    running.stop()


def _pwn_body(target: Path) -> bytes:
    return json.dumps({"command": f"id > {target}"}).encode()


def test_cors_simple_requests_run_nothing(open_agent: RunningAgent, tmp_path: Path) -> None:
    """Every body a page can send without a preflight (with or without Origin) is refused."""
    target = tmp_path / "pwned"
    body = _pwn_body(target)
    # An HTML form with enctype=text/plain: name='{"command": "id > f", "x": "' value='"}'.
    form_text = f'{{"command": "id > {target}", "x": "="}}'.encode()
    attacks = [
        (
            "fetch text/plain from a page",
            body,
            {"Content_Type": "text/plain", "Origin": "http://evil.example"},
        ),
        ("sendBeacon", body, {"Content_Type": "text/plain;charset=UTF-8"}),
        ("form enctype=text/plain", form_text, {"Content_Type": "text/plain"}),
        ("form urlencoded", b"command=id", {"Content_Type": "application/x-www-form-urlencoded"}),
        (
            "form multipart",
            b'--b\r\nContent-Disposition: form-data; name="command"\r\n\r\nid\r\n--b--\r\n',
            {"Content_Type": "multipart/form-data; boundary=b"},
        ),
        ("fetch with a Blob body (no type)", body, {}),
        (
            "JSON from a page (would need a preflight)",
            body,
            {"Content_Type": "application/json", "Origin": "http://evil.example"},
        ),
        ("a file: page", body, {"Content_Type": "text/plain", "Origin": "null"}),
    ]
    for name, payload, headers in attacks:
        answer = exchange(open_agent, request(open_agent, "POST", "/exec", payload, **headers))
        assert answer.status in (403, 415), (name, answer.status, answer.body)
        error = answer.envelope()
        if answer.status == 415:
            assert error["code"] == "UNSUPPORTED_MEDIA_TYPE" and "application/json" in str(error["message"])
        else:
            assert error["code"] == "HOST_NOT_ALLOWED" and "Origin" in str(error["message"])
    time.sleep(0.5)  # a command that had started would have written by now
    assert not target.exists()
    # The same command with the type a page cannot send cross-site runs (the refusals were not luck).
    answer = exchange(
        open_agent, request(open_agent, "POST", "/exec", body, Content_Type="application/json; charset=utf-8")
    )
    assert answer.status == 200, answer.body
    assert target.read_text().startswith("uid=")


def test_a_bodiless_post_needs_the_json_type(open_agent: RunningAgent) -> None:
    """fetch(url, {method: "POST", mode: "no-cors"}) sends no type and no body: still refused."""
    answer = exchange(open_agent, request(open_agent, "POST", "/processes/nope/signal"))
    assert answer.status == 415
    assert answer.envelope()["details"] == {"expected": "application/json"}


def test_uploads_take_octet_stream_only(open_agent: RunningAgent, tmp_path: Path) -> None:
    target = tmp_path / "up.txt"
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        answer = exchange(
            open_agent, request(open_agent, "PUT", f"/files?path={target}", b"data", Content_Type=kind)
        )
        assert answer.status == 415, (kind, answer.body)
        assert "application/octet-stream" in str(answer.envelope()["message"])
    assert not target.exists()
    for headers in ({"Content_Type": "application/octet-stream"}, {}):  # PUT is always preflighted
        answer = exchange(open_agent, request(open_agent, "PUT", f"/files?path={target}", b"data", **headers))
        assert answer.status == 200, answer.body
    assert target.read_bytes() == b"data"


def test_dns_rebinding_host_is_refused_on_every_route(open_agent: RunningAgent) -> None:
    port = port_of(open_agent)
    for path in ("/health", "/desktop/screenshot", "/processes", "/openapi.json"):
        for host in (f"evil.example:{port}", "evil.example", f"127.0.0.1.evil.example:{port}"):
            answer = exchange(open_agent, request(open_agent, "GET", path, host=host))
            assert answer.status == 403, (path, host, answer.body)
            error = answer.envelope()
            assert error["code"] == "HOST_NOT_ALLOWED" and "Host" in str(error["message"])


def test_allowed_hosts_and_origins_still_work(open_agent: RunningAgent) -> None:
    port = port_of(open_agent)
    hosts = [
        f"127.0.0.1:{port}",
        f"localhost:{port}",
        f"[::1]:{port}",
        f"10.1.2.3:{port}",  # an IP literal cannot be rebound
        f"agent.internal:{port}",  # --allowed-hosts
        f"a.fleet.example:{port}",  # --allowed-hosts .fleet.example
        "vm-17.corp.example:8000",  # --advertise-url
        f"LOCALHOST.:{port}",
    ]
    for host in hosts:
        assert exchange(open_agent, request(open_agent, "GET", "/health", host=host)).status == 200, host
    for origin in (
        "http://localhost:3000",
        "http://127.0.0.1:8000",
        "https://agent.internal",
        "http://[::1]",
    ):
        answer = exchange(open_agent, request(open_agent, "GET", "/health", Origin=origin))
        assert answer.status == 200, origin
    for origin in (
        "http://10.1.2.3",
        "http://evil.example",
        "null",
        "http://localhost.evil.example",
        "moz-extension://localhost",  # an extension's page is not a web origin the agent serves
        "chrome-extension://localhost",
    ):
        answer = exchange(open_agent, request(open_agent, "GET", "/health", Origin=origin))
        assert answer.status == 403, origin


def test_a_page_of_another_origin_gets_nothing_without_an_origin_header(open_agent: RunningAgent) -> None:
    """<img>, <iframe> and no-cors GETs carry no Origin; Fetch Metadata says they are cross-origin."""
    for site in ("cross-site", "same-site", "CROSS-SITE"):
        for path in ("/screencast", "/events", "/viewer", "/desktop/screenshot"):
            answer = exchange(open_agent, request(open_agent, "GET", path, Sec_Fetch_Site=site))
            assert answer.status == 403, (site, path, answer.body)
            assert answer.envelope()["details"] == {"header": "Sec-Fetch-Site"}
    for site in ("same-origin", "none"):  # the agent's own pages; a link the user opened
        assert exchange(open_agent, request(open_agent, "GET", "/health", Sec_Fetch_Site=site)).status == 200
    # A page whose Origin is allowed is judged by its Origin.
    answer = exchange(
        open_agent,
        request(open_agent, "GET", "/health", Sec_Fetch_Site="cross-site", Origin="https://agent.internal"),
    )
    assert answer.status == 200
