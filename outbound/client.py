"""One HTTP client for every request the server makes on someone else's behalf.

LTI platforms name the URLs we fetch (their configuration, JWKS, token, score and roster endpoints),
so each one is a way for a stranger to make this server send a request. Every such request goes
through `request()`, which:

- accepts only http(s) URLs without user info; plain http only to a network the operator allowed
  explicitly (OUTBOUND_HTTP_ALLOW, for development and tests);
- resolves the host name once, refuses the request if any address it resolves to is not public
  (outbound/addresses.py), and connects to the very address it checked: there is no second lookup,
  so a DNS answer that changes between the check and the connection (rebinding) cannot slip through.
  TLS still verifies the certificate against the host name;
- follows a redirect only within the same origin, for GET, at most `MAX_REDIRECTS` times, checking
  the destination again; a redirect to another origin is an error (a bearer token must not travel);
- stops at a deadline for the whole exchange and at a size cap for the answer, refusing (never
  truncating) a bigger one;
- never puts the remote body in an error message: errors name the method, the origin and the status.
  `OutboundError.detail` keeps the first bytes for the server's log only.

Tests swap `resolve` and `open_connection` for their own to prove that nothing is even attempted
towards a refused address (no test sends a packet outside 127.0.0.0/8).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

from outbound.addresses import IPAddress, IPNetwork, allowed_explicitly, may_connect

MAX_REDIRECTS = 3
READ_CHUNK = 64 * 1024
USER_AGENT = "lessons-outbound/1"


class OutboundError(Exception):
    """A request that failed; ``str(exc)`` is safe to show (no remote content)."""

    #: True when trying again later may help (timeouts, connection failures, 5xx, 408, 429).
    transient = False

    def __init__(self, message: str, *, status: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.detail = detail  # the first bytes of a remote error body: for logs, never for visitors


class DestinationRefused(OutboundError):
    """The URL or the address it resolves to is not one the server may reach."""


class RemoteRefused(OutboundError):
    """The remote answered 4xx (other than 408/429), or with something we will not read."""


class RemoteUnavailable(OutboundError):
    """No answer in time, no connection, or a 5xx/408/429 answer."""

    transient = True


@dataclass(frozen=True)
class Reply:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise RemoteRefused("the answer is not JSON") from exc


Resolver = Callable[[str, int], list[IPAddress]]


def system_resolve(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for ``host`` (one lookup)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    found: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    return found


def system_open_connection(address: IPAddress, port: int, timeout: float) -> socket.socket:
    return socket.create_connection((str(address), port), timeout=timeout)


# Indirections tests replace (see the module docstring).
resolve: Resolver = system_resolve
open_connection: Callable[[IPAddress, int, float], socket.socket] = system_open_connection


class _PinnedConnection(http.client.HTTPConnection):
    """An HTTP(S) connection over a socket already connected to a checked address."""

    def __init__(self, host: str, port: int, sock: socket.socket, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.sock = sock

    def connect(self) -> None:  # the socket is given; never look the host up again
        raise http.client.HTTPException("the pinned connection was closed")


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"


def _target(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise DestinationRefused("only http(s) URLs can be fetched")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise DestinationRefused("URLs with user information are not fetched")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise DestinationRefused("the URL has no host")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return _Target(scheme, host, port or (443 if scheme == "https" else 80), path)


def _checked_addresses(target: _Target, allow: tuple[IPNetwork, ...]) -> list[IPAddress]:
    try:
        addresses = resolve(target.host, target.port)
    except (OSError, UnicodeError) as exc:
        raise RemoteUnavailable(f"{target.host} could not be resolved") from exc
    if not addresses:
        raise RemoteUnavailable(f"{target.host} has no address")
    refused = [address for address in addresses if not may_connect(address, allow=allow)]
    if refused:
        # One bad address refuses the whole name: a rebinding answer may list a public one first.
        raise DestinationRefused(f"{target.host} resolves to an address this server may not reach")
    if target.scheme == "http" and not all(allowed_explicitly(a, allow=allow) for a in addresses):
        raise DestinationRefused("plain http is only used for networks listed in OUTBOUND_HTTP_ALLOW")
    return addresses


def _connect(target: _Target, addresses: Iterable[IPAddress], deadline: float) -> socket.socket:
    last: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            sock = open_connection(address, target.port, remaining)
        except OSError as exc:
            last = exc
            continue
        if target.scheme == "https":
            try:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=target.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise RemoteUnavailable(f"TLS with {target.host} failed: {type(exc).__name__}") from exc
        return sock
    raise RemoteUnavailable(f"could not connect to {target.host}") from last


def _read_body(response: http.client.HTTPResponse, *, max_bytes: int, deadline: float, sock: socket.socket) -> bytes:
    declared = response.getheader("Content-Length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise RemoteRefused(f"the answer is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RemoteUnavailable("the answer took too long")
        sock.settimeout(remaining)
        chunk = response.read1(READ_CHUNK) if hasattr(response, "read1") else response.read(READ_CHUNK)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > max_bytes:
            raise RemoteRefused(f"the answer is larger than {max_bytes} bytes")
        chunks.append(chunk)


def _exchange(
    method: str, target: _Target, *, headers: dict[str, str], body: bytes | None, allow: tuple[IPNetwork, ...],
    deadline: float, max_bytes: int,
) -> Reply:  # fmt: skip
    addresses = _checked_addresses(target, allow)
    sock = _connect(target, addresses, deadline)
    connection = _PinnedConnection(target.host, target.port, sock, timeout=max(0.01, deadline - time.monotonic()))
    try:
        connection.request(method, target.path, body=body, headers={"User-Agent": USER_AGENT, **headers})
        response = connection.getresponse()
        payload = _read_body(response, max_bytes=max_bytes, deadline=deadline, sock=sock)
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, payload)
    except TimeoutError as exc:
        raise RemoteUnavailable(f"{method} {target.origin} took too long") from exc
    except (OSError, http.client.HTTPException) as exc:
        raise RemoteUnavailable(f"{method} {target.origin} failed: {type(exc).__name__}") from exc
    finally:
        connection.close()


def request(
    method: str,
    url: str,
    *,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float,
    max_bytes: int,
    allow: tuple[IPNetwork, ...] = (),
) -> Reply:
    """Send one request (following same-origin GET redirects) and return a 2xx answer, or raise.

    ``timeout`` bounds the whole exchange, redirects included; ``allow`` lists the non-public
    networks the operator allowed (settings.OUTBOUND_HTTP_ALLOW via `outbound.settings_policy`)."""
    deadline = time.monotonic() + timeout
    target = _target(url)
    for _ in range(MAX_REDIRECTS + 1):
        reply = _exchange(
            method, target, headers=headers or {}, body=body, allow=allow, deadline=deadline, max_bytes=max_bytes
        )
        if reply.status in (301, 302, 303, 307, 308):
            location = reply.headers.get("location", "")
            following = _target(urljoin(f"{target.origin}{target.path}", location)) if location else None
            if following is None or following.origin != target.origin:
                raise RemoteRefused(f"{method} {target.origin} redirected to another origin", status=reply.status)
            if method not in ("GET", "HEAD"):
                raise RemoteRefused(f"{method} {target.origin} answered with a redirect", status=reply.status)
            target = following
            continue
        if reply.status >= 400:
            detail = reply.body[:300].decode(errors="replace")
            message = f"{method} {target.origin}{urlsplit(target.path).path} answered {reply.status}"
            if reply.status >= 500 or reply.status in (408, 429):
                raise RemoteUnavailable(message, status=reply.status, detail=detail)
            raise RemoteRefused(message, status=reply.status, detail=detail)
        return reply
    raise RemoteRefused(f"{method} {target.origin} redirected more than {MAX_REDIRECTS} times")
