"""The guarded outbound client against real sockets on loopback. Where a test needs a name that
resolves elsewhere, it swaps the client's resolver, and swaps its connector for one that fails the
test if a connection is even attempted: no test sends a packet outside 127.0.0.0/8."""

from __future__ import annotations

import ipaddress
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from outbound import client
from outbound.addresses import parse_networks
from outbound.client import DestinationRefused, RemoteRefused, RemoteUnavailable

LOOPBACK = parse_networks(["127.0.0.1/32"])


class Listener:
    """A TCP listener that only counts connections (it never answers)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.held: list[socket.socket] = []
        self.sock.settimeout(0.1)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self.held.append(conn)

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=5)
        for conn in self.held:
            conn.close()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    running = Listener()
    yield running
    running.close()


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
    seen: list[tuple[str, str, str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self) -> None:
        self.seen.append((self.command, self.path, self.headers.get("Host", "")))
        if self.path == "/drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            for _ in range(600):  # a byte every 50 ms, for half a minute: only the deadline stops it
                try:
                    self.wfile.write(b" ")
                    self.wfile.flush()
                except OSError:
                    return
                time.sleep(0.05)
            return
        status, headers, body = self.routes.get(self.path.split("?")[0], (404, {}, b"no such page"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if "Transfer-Encoding" not in headers:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if "Transfer-Encoding" in headers:
            for start in range(0, len(body), 65536):
                piece = body[start : start + 65536]
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(body)

    do_GET = do_POST = _answer


@pytest.fixture
def web() -> Iterator[ThreadingHTTPServer]:
    Handler.routes, Handler.seen = {}, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _url(server: ThreadingHTTPServer, path: str, host: str = "127.0.0.1") -> str:
    return f"http://{host}:{server.server_address[1]}{path}"


def _get(url: str, **kwargs: object) -> client.Reply:
    options: dict = {"timeout": 5.0, "max_bytes": 1024 * 1024, "allow": LOOPBACK, **kwargs}
    return client.request("GET", url, **options)


@pytest.fixture
def no_connection(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail loudly if the client tries to connect anywhere."""
    attempts: list[object] = []

    def refuse(address: object, port: int, timeout: float) -> socket.socket:
        attempts.append((address, port))
        raise AssertionError(f"a connection to {address}:{port} was attempted")

    monkeypatch.setattr(client, "open_connection", refuse)
    return attempts


def test_loopback_is_refused_unless_allowed_and_nothing_connects(listener: Listener) -> None:
    for url in (f"http://127.0.0.1:{listener.port}/", f"https://127.0.0.1:{listener.port}/",
                f"http://localhost:{listener.port}/", f"http://[::ffff:127.0.0.1]:{listener.port}/",
                f"http://2130706433:{listener.port}/", f"http://0x7f.1:{listener.port}/"):  # fmt: skip
        with pytest.raises((DestinationRefused, RemoteUnavailable)):
            client.request("GET", url, timeout=2.0, max_bytes=1024)
    time.sleep(0.3)  # let the listener's accept loop see anything that might have arrived
    assert listener.accepted == 0


@pytest.mark.parametrize(
    "answer",
    [["10.0.0.5"], ["192.168.1.10"], ["172.20.0.1"], ["169.254.169.254"], ["100.64.1.1"], ["fd12:3456::1"],
     ["fe80::1"], ["::ffff:169.254.169.254"], ["0.0.0.0"], ["93.184.216.34", "10.0.0.5"]],
)  # fmt: skip
def test_names_resolving_to_internal_addresses_are_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, no_connection: list[object], answer: list[str]
) -> None:
    monkeypatch.setattr(client, "resolve", lambda host, port: [ipaddress.ip_address(a) for a in answer])
    with pytest.raises(DestinationRefused, match="resolves to an address this server may not reach"):
        client.request("GET", "https://lms.attacker.example/config", timeout=2.0, max_bytes=1024)
    assert no_connection == []


def test_plain_http_to_a_public_address_is_refused(monkeypatch: pytest.MonkeyPatch, no_connection: list) -> None:
    monkeypatch.setattr(client, "resolve", lambda host, port: [ipaddress.ip_address("93.184.216.34")])
    with pytest.raises(DestinationRefused, match="plain http"):
        client.request("GET", "http://lms.example.edu/config", timeout=2.0, max_bytes=1024)
    assert no_connection == []


@pytest.mark.parametrize(
    ("url", "words"),
    [("ftp://lms.example/x", "only http"), ("file:///etc/passwd", "only http"), ("gopher://x/", "only http"),
     ("https://user:pw@lms.example/", "user information"), ("https:///nohost", "no host"),
     ("http://[::1/", "not a valid URL")],
)  # fmt: skip
def test_urls_that_are_not_plain_web_addresses_are_refused(no_connection: list, url: str, words: str) -> None:
    with pytest.raises(DestinationRefused, match=words):
        client.request("GET", url, timeout=2.0, max_bytes=1024)
    assert no_connection == []


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch, web: ThreadingHTTPServer
) -> None:
    """DNS rebinding: the name's second answer would point elsewhere; there is no second lookup."""
    port = web.server_address[1]
    other = Listener(host="127.0.0.2", port=port)
    answers = iter([["127.0.0.1"], ["127.0.0.2"], ["127.0.0.2"]])
    lookups: list[str] = []

    def rebinding(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        lookups.append(host)
        return [ipaddress.ip_address(a) for a in next(answers)]

    monkeypatch.setattr(client, "resolve", rebinding)
    Handler.routes["/config"] = (200, {"Content-Type": "application/json"}, b'{"ok": true}')
    try:
        reply = _get(f"http://lms.rebind.test:{port}/config")
        time.sleep(0.3)
        assert reply.json() == {"ok": True}
        assert lookups == ["lms.rebind.test"]
        assert Handler.seen == [("GET", "/config", f"lms.rebind.test:{port}")]
        assert other.accepted == 0
    finally:
        other.close()


def test_a_redirect_to_another_origin_is_not_followed(web: ThreadingHTTPServer) -> None:
    elsewhere = Listener(host="127.0.0.1")
    Handler.routes["/config"] = (302, {"Location": f"http://127.0.0.1:{elsewhere.port}/steal"}, b"")
    try:
        with pytest.raises(RemoteRefused, match="redirected to another origin"):
            _get(_url(web, "/config"))
        time.sleep(0.3)
        assert elsewhere.accepted == 0
    finally:
        elsewhere.close()


def test_a_same_origin_redirect_is_followed_for_get_only(web: ThreadingHTTPServer) -> None:
    Handler.routes["/old"] = (301, {"Location": "/new"}, b"")
    Handler.routes["/new"] = (200, {}, b'{"moved": true}')
    assert _get(_url(web, "/old")).json() == {"moved": True}
    with pytest.raises(RemoteRefused, match="answered with a redirect"):
        client.request("POST", _url(web, "/old"), body=b"{}", timeout=5.0, max_bytes=1024, allow=LOOPBACK)
    Handler.routes["/loop"] = (302, {"Location": "/loop"}, b"")
    with pytest.raises(RemoteRefused, match="redirected more than 3 times"):
        _get(_url(web, "/loop"))


@pytest.mark.parametrize("chunked", [False, True])
def test_an_answer_over_the_size_cap_is_refused_not_truncated(web: ThreadingHTTPServer, chunked: bool) -> None:
    headers = {"Transfer-Encoding": "chunked"} if chunked else {}
    Handler.routes["/big"] = (200, headers, b"x" * (1024 * 1024 + 1))
    with pytest.raises(RemoteRefused, match="larger than 1048576 bytes"):
        _get(_url(web, "/big"))
    Handler.routes["/fits"] = (200, headers, b"y" * (1024 * 1024))
    assert len(_get(_url(web, "/fits")).body) == 1024 * 1024


def test_a_slow_answer_is_cut_at_the_deadline_of_the_whole_exchange(web: ThreadingHTTPServer) -> None:
    # Each byte arrives well within a per-read timeout; only a deadline for the whole exchange stops it.
    with pytest.raises(RemoteUnavailable, match="took too long"):
        _get(_url(web, "/drip"), timeout=1.0)


def test_a_silent_server_is_cut_at_the_deadline(listener: Listener) -> None:
    with pytest.raises(RemoteUnavailable):
        _get(f"http://127.0.0.1:{listener.port}/", timeout=0.5)


def test_error_answers_never_carry_the_remote_body_in_the_message(web: ThreadingHTTPServer) -> None:
    Handler.routes["/fail"] = (500, {}, b"SECRET-INTERNAL-DETAIL")
    Handler.routes["/denied"] = (403, {}, b"SECRET-INTERNAL-DETAIL")
    with pytest.raises(RemoteUnavailable) as transient:
        _get(_url(web, "/fail?token=1"))
    with pytest.raises(RemoteRefused) as permanent:
        _get(_url(web, "/denied"))
    for caught in (transient.value, permanent.value):
        assert "SECRET" not in str(caught)
        assert caught.detail == "SECRET-INTERNAL-DETAIL"  # kept for the server's log only
    assert str(transient.value) == f"GET http://127.0.0.1:{web.server_address[1]}/fail answered 500"
    assert transient.value.transient is True and permanent.value.transient is False


def test_tls_certificates_are_verified(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=lms.tls.test"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(client, "resolve", lambda host, port: [ipaddress.ip_address("127.0.0.1")])
    try:
        with pytest.raises(RemoteUnavailable, match="TLS with lms.tls.test failed"):
            _get(f"https://lms.tls.test:{server.server_address[1]}/")
    finally:
        server.shutdown()
        server.server_close()
