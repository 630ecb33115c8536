"""The dashboard's HTTP server in host mode: budgets, bad requests, many clients, access."""

import base64
import json
import socket
import time
import urllib.error
import urllib.request

import pytest
from flows import Phone, status
from hostmode import HostMode


@pytest.fixture(scope="module")
def host():
    with HostMode({"SIP_USERS": "1001,1002"}) as h:
        yield h


def get(h, path, headers=None, timeout=5):
    req = urllib.request.Request("http://%s:%d%s" % (h.host, h.http_port, path),
                                 headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.status, dict(r.headers), r.read()


def register(h, user, port, timeout=1.0):
    """REGISTER over real UDP; returns the status and the seconds the answer took."""
    phone = Phone(user, "127.0.0.1", port, "%s:%d" % h.sip_addr)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", port))
        s.settimeout(timeout)
        data = phone.register(call_id="http-%s-%d" % (user, port))
        started = time.monotonic()
        s.sendto(data, h.sip_addr)
        answer = s.recv(4096)
        return status(answer), time.monotonic() - started


def raw(h, data, timeout=3):
    with socket.create_connection((h.host, h.http_port), timeout=timeout) as c:
        c.sendall(data)
        chunks = []
        while True:
            try:
                got = c.recv(4096)
            except socket.timeout:
                break
            if not got:
                break
            chunks.append(got)
        return b"".join(chunks)


def test_api_status_shape_and_headers(host):
    code, headers, body = get(host, "/api/status")
    data = json.loads(body)
    assert code == 200 and headers["cache-control"] == "no-store"
    assert headers["x-content-type-options"] == "nosniff"
    assert "default-src" in headers["content-security-policy"]
    assert data["name"] == "Switchboard" and data["sip"].endswith(":%d" % host.sip_port)
    for table in ("bindings", "transactions", "calls", "history"):
        assert set(data["tables"][table]) == {"use", "limit"}
    assert data["counters"]["received"] >= 0


def test_registrations_appear_in_api(host):
    assert register(host, "1001", _free_udp())[0] == 200
    code, _, body = get(host, "/api/registrations")
    regs = json.loads(body)
    assert [r["user"] for r in regs] == ["1001"]
    assert regs[0]["contacts"][0]["source"].startswith("127.0.0.1:")
    assert 3590 <= regs[0]["contacts"][0]["expires_in"] <= 3600


def test_unknown_path_404_and_malformed_request_400_then_still_serving(host):
    with pytest.raises(urllib.error.HTTPError) as e:
        get(host, "/nope")
    assert e.value.code == 404
    assert raw(host, b"GARBAGE\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(host, b"POST /api/status HTTP/1.1\r\nContent-Length: 0\r\n\r\n").startswith(
        b"HTTP/1.1 404 ")
    assert raw(host, b"GET\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(host, b"\xff\xfe\r\n\r\n").startswith(b"HTTP/1.1 400 ")
    assert raw(host, b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 431 ")
    assert get(host, "/api/status")[0] == 200


def test_slow_client_does_not_stall_sip(host):
    """A client trickling bytes to the HTTP port; REGISTER still answered within 1 s."""
    slow = socket.create_connection((host.host, host.http_port))
    try:
        request = b"GET /api/status HTTP/1.1\r\nHost: x\r\n\r\n"
        worst = 0.0
        port = _free_udp()
        for i, byte in enumerate(request):
            try:
                slow.send(bytes([byte]))
            except OSError:
                break  # the server gave up on us: that is the point
            if i % 5 == 0:
                code, took = register(host, "1002", port)
                assert code == 200
                worst = max(worst, took)
            time.sleep(0.03)
        assert worst < 1.0
        slow.settimeout(2)
        assert slow.recv(100).startswith(b"HTTP/1.1 408 ")  # the trickler was cut off
    finally:
        slow.close()
    assert get(host, "/api/status")[0] == 200


def test_many_idle_connections_sip_keeps_working(host):
    conns = []
    try:
        for _ in range(40):
            conns.append(socket.create_connection((host.host, host.http_port)))
        port = _free_udp()
        for _ in range(3):
            code, took = register(host, "1001", port)
            assert code == 200 and took < 1.0
    finally:
        for c in conns:
            c.close()
    assert get(host, "/api/status", timeout=10)[0] == 200


def test_page_renders_server_side(host):
    register(host, "1001", _free_udp())
    code, headers, body = get(host, "/")
    page = body.decode()
    assert code == 200 and headers["content-type"].startswith("text/html")
    assert "<td>1001</td>" in page and "<!--@" not in page
    assert len(body) <= 16 * 1024


def test_dashboard_password():
    with HostMode({"DASHBOARD_PASSWORD": "s3cret", "SIP_USERS": "1001:pw1"}) as h:
        for path in ("/", "/api/status", "/api/registrations", "/api/calls", "/api/history",
                     "/api/state"):
            with pytest.raises(urllib.error.HTTPError) as e:
                get(h, path)
            assert e.value.code == 401
            assert "Basic" in e.value.headers["WWW-Authenticate"]
        bad = "Basic " + base64.b64encode(b"admin:wrong").decode()
        with pytest.raises(urllib.error.HTTPError):
            get(h, "/api/status", {"Authorization": bad})
        good = "Basic " + base64.b64encode(b"admin:s3cret").decode()
        code, _, body = get(h, "/api/status", {"Authorization": good})
        assert code == 200
        for path in ("/api/status", "/api/registrations", "/"):
            text = get(h, path, {"Authorization": good})[2].decode()
            assert "s3cret" not in text and "pw1" not in text
        # repeated wrong passwords: refused for a while, even with the right one
        for _ in range(5):
            with pytest.raises(urllib.error.HTTPError) as e:
                get(h, "/api/status", {"Authorization": bad})
        with pytest.raises(urllib.error.HTTPError) as e:
            get(h, "/api/status", {"Authorization": good})
        assert e.value.code == 429 and int(e.value.headers["Retry-After"]) > 0


def _free_udp():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
