"""An LTI 1.3 platform (an LMS) for tests: a real HTTP server on loopback with its own RSA key.

It serves what a tool talks to: JWKS, the OIDC auth endpoint (answers a login by form-posting a
signed id_token to the tool), the OAuth 2 token endpoint (checks the tool's client assertion against
the tool's real /lti/jwks/, and records the scopes it granted), an AGS line items service (GET
filtered by resource link, resource or tag, in pages linked by `Link: rel="next"`; POST creates a
column; it can fail with 500, or create and then answer 500), an AGS scores endpoint that records
scores (and can fail the first N posts with 500), an NRPS membership service in two pages, an
OpenID configuration and registration endpoint for Dynamic Registration, a Deep Linking return
endpoint that verifies the tool's JWT, and a course page that embeds the tool in an iframe (with
the LTI postMessage storage the tool may use).
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

LTI = "https://purl.imsglobal.org/spec/lti/claim/"
ROLE_LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
ROLE_INSTRUCTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Instructor"
ROLE_TA = "http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant"
SCORE_TYPE = "application/vnd.ims.lis.v1.score+json"
LINEITEM_TYPE = "application/vnd.ims.lis.v2.lineitem+json"
LINEITEMS_TYPE = "application/vnd.ims.lis.v2.lineitemcontainer+json"
AGS_SCOPE = "https://purl.imsglobal.org/spec/lti-ags/scope/"
SCOPE_SCORE = AGS_SCOPE + "score"
SCOPE_LINEITEM = AGS_SCOPE + "lineitem"
SCOPE_LINEITEM_READONLY = AGS_SCOPE + "lineitem.readonly"
# The container filters of AGS 2.0 and the line item field each one matches.
LINEITEM_FILTERS = {"resource_link_id": "resourceLinkId", "resource_id": "resourceId", "tag": "tag"}
NRPS_TYPE = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"


@dataclass
class PlatformKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        return {
            **json.loads(RSAAlgorithm.to_jwk(self.private.public_key())),
            "kid": self.kid,
            "alg": "RS256",
            "use": "sig",
        }


@dataclass
class Recorded:
    scores: list[dict[str, Any]] = field(default_factory=list)
    lineitem_requests: list[dict[str, Any]] = field(default_factory=list)
    lineitem_reads: list[dict[str, Any]] = field(default_factory=list)  # GETs of one line item
    score_headers: list[dict[str, str]] = field(default_factory=list)
    token_requests: list[dict[str, Any]] = field(default_factory=list)
    jwks_fetches: int = 0
    registrations: list[dict[str, Any]] = field(default_factory=list)
    config_fetches: int = 0
    deep_link_responses: list[dict[str, Any]] = field(default_factory=list)
    auth_requests: list[dict[str, str]] = field(default_factory=list)
    storage: dict[str, str] = field(default_factory=dict)


class PlatformEmulator:
    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        tool_url: str = "http://testserver",
        client_id: str = "tool-client-1",
        deployment_id: str = "deployment-1",
    ) -> None:
        self.host = host
        self.tool_url = tool_url.rstrip("/")
        self.client_id = client_id
        self.deployment_id = deployment_id
        self.keys = [
            PlatformKey(kid="platform-key-1", private=rsa.generate_private_key(public_exponent=65537, key_size=2048))
        ]
        self.recorded = Recorded()
        self.fail_scores = 0  # the next N score posts answer 500
        self.refuse_scores = 0  # the next N score posts answer 400 (a score the platform will not take)
        self.lineitems: list[dict[str, Any]] = []  # the gradebook columns of the course
        self.lineitems_page_size = 2
        self.lineitems_filtered = True  # False: a platform that ignores the container filters
        self.fail_lineitems = 0  # the next N line items requests (GET or POST) answer 500
        self.lose_created_lineitems = 0  # the next N POSTs create the column, then answer 500 anyway
        self.lineitems_delay = 0.0  # seconds each line items GET takes
        self.grant_scopes: set[str] | None = None  # the token endpoint grants only these (None: all asked)
        self.access_tokens: dict[str, float] = {}
        self.token_scopes: dict[str, set[str]] = {}
        self.token_lifetime = 3600
        self.registration_token = "registration-token-" + secrets.token_hex(4)
        self.launches: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.members: list[dict[str, Any]] = []
        self.claim_overrides: dict[str, Any] = {}
        self.openid_overrides: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle ---------------------------------------------------------------------------------
    def __enter__(self) -> PlatformEmulator:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self._server.server_address[1]}"

    @property
    def issuer(self) -> str:
        return self.base

    @property
    def registration_args(self) -> dict[str, str]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "auth_login_url": f"{self.base}/auth",
            "auth_token_url": f"{self.base}/token",
            "jwks_url": f"{self.base}/jwks",
        }

    def lineitem_url(self, name: str) -> str:
        return f"{self.base}/lineitems/{name}"

    @property
    def lineitems_url(self) -> str:
        return f"{self.base}/lineitems"

    def add_lineitem(
        self, *, resource_link_id: str | None, label: str, score_maximum: float = 100, **extra: Any
    ) -> str:
        item = {"id": self.lineitem_url(random_id()), "label": label, "scoreMaximum": score_maximum, **extra}
        if resource_link_id is not None:
            item["resourceLinkId"] = resource_link_id
        with self._lock:
            self.lineitems.append(item)
        return item["id"]

    def lineitem_posts(self) -> list[dict[str, Any]]:
        return [request for request in self.recorded.lineitem_requests if request["method"] == "POST"]

    @property
    def memberships_url(self) -> str:
        return f"{self.base}/memberships?page=1"

    # --- keys and tokens ------------------------------------------------------------------------------
    def rotate_key(self) -> PlatformKey:
        key = PlatformKey(
            kid=f"platform-key-{len(self.keys) + 1}",
            private=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        )
        self.keys.append(key)
        return key

    def sign(
        self,
        claims: dict[str, Any],
        *,
        key: PlatformKey | None = None,
        headers: dict[str, Any] | None = None,
        kid: str | None | bool = True,
    ) -> str:
        """RS256 with the newest key (or `key`). kid=False leaves the kid out; a string sets any kid."""
        key = key or self.keys[-1]
        header = dict(headers or {})
        if kid is True:
            header["kid"] = key.kid
        elif isinstance(kid, str):
            header["kid"] = kid
        return jwt.encode(claims, key.private, algorithm="RS256", headers=header)

    def launch_claims(self, *, nonce: str, login_hint: str, message_hint: str) -> dict[str, Any]:
        user = self.users.get(login_hint, {"sub": login_hint, "roles": [ROLE_LEARNER]})
        launch = self.launches.get(message_hint, {})
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "aud": self.client_id,
            "azp": self.client_id,
            "sub": user["sub"],
            "exp": now + 300,
            "iat": now,
            "nonce": nonce,
            "name": user.get("name", ""),
            "given_name": user.get("given_name", ""),
            "family_name": user.get("family_name", ""),
            "email": user.get("email", ""),
            LTI + "deployment_id": self.deployment_id,
            LTI + "version": "1.3.0",
            LTI + "message_type": launch.get("message_type", "LtiResourceLinkRequest"),
            LTI + "roles": user.get("roles", [ROLE_LEARNER]),
            LTI + "target_link_uri": f"{self.tool_url}/lti/launch/",
            LTI + "context": launch.get("context", {"id": "course-101", "label": "C101", "title": "Physics 101"}),
            "https://purl.imsglobal.org/spec/lti-nrps/claim/namesroleservice": {
                "context_memberships_url": self.memberships_url,
                "service_versions": ["2.0"],
            },
        }
        if claims[LTI + "message_type"] == "LtiResourceLinkRequest":
            claims[LTI + "resource_link"] = launch.get("resource_link", {"id": "link-1", "title": "Week 1"})
            if "custom" in launch:
                claims[LTI + "custom"] = launch["custom"]
            if "lineitem" in launch:
                claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = {
                    "scope": [
                        "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                        "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                    ],
                    "lineitem": launch["lineitem"],
                    "lineitems": f"{self.base}/lineitems",
                }
            elif "ags_scopes" in launch:  # a link without its own column: only the container and scopes
                claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"] = {
                    "scope": launch["ags_scopes"],
                    "lineitems": self.lineitems_url,
                }
        else:
            claims["https://purl.imsglobal.org/spec/lti-dl/claim/deep_linking_settings"] = {
                "deep_link_return_url": launch.get("return_url", f"{self.base}/deep_link_return"),
                "accept_types": ["ltiResourceLink"],
                "accept_presentation_document_targets": ["iframe", "window"],
                "accept_multiple": launch.get("accept_multiple", True),
                "data": launch.get("data", "opaque-platform-data"),
            }
        claims.update(self.claim_overrides)
        return claims

    def login_params(self, *, login_hint: str, message_hint: str) -> dict[str, str]:
        """What the platform sends to the tool's /lti/login/ to start a launch."""
        return {
            "iss": self.issuer,
            "login_hint": login_hint,
            "target_link_uri": f"{self.tool_url}/lti/launch/",
            "lti_message_hint": message_hint,
            "client_id": self.client_id,
            "lti_deployment_id": self.deployment_id,
        }

    def verify_tool_jwt(self, token: str, *, audience: str) -> dict[str, Any]:
        """Check a JWT the tool signed against the tool's published /lti/jwks/ (real HTTP)."""
        client = jwt.PyJWKClient(f"{self.tool_url}/lti/jwks/", cache_jwk_set=False, timeout=10)
        key = client.get_signing_key_from_jwt(token)
        return jwt.decode(token, key.key, algorithms=["RS256"], audience=audience)

    def membership_pages(self) -> list[list[dict[str, Any]]]:
        half = (len(self.members) + 1) // 2
        return [self.members[:half], self.members[half:]]

    def course_page(self, *, login_hint: str, message_hint: str, storage: bool = False) -> str:
        params = self.login_params(login_hint=login_hint, message_hint=message_hint)
        if storage:
            params["lti_storage_target"] = "_parent"
        src = f"{self.tool_url}/lti/login/?{urlencode(params)}"
        return f"""<!doctype html><html><head><title>Emulated LMS course</title></head><body>
<h1>Physics 101</h1>
<iframe id="tool" name="tool" src="{html.escape(src)}" width="960" height="640"
        allow="autoplay; fullscreen" style="border:1px solid #ccc"></iframe>
<script>
  // The LTI client-side postMessage storage, answering from this (parent) window.
  const stored = {{}};
  window.ltiStorageLog = [];
  window.addEventListener("message", function (event) {{
    const data = event.data || {{}};
    if (data.subject !== "lti.put_data" && data.subject !== "lti.get_data") return;
    window.ltiStorageLog.push(data.subject);
    if (data.subject === "lti.put_data") stored[event.origin + " " + data.key] = data.value;
    event.source.postMessage({{subject: data.subject + ".response", message_id: data.message_id, key: data.key,
                               value: stored[event.origin + " " + data.key]}}, event.origin);
  }});
</script></body></html>"""


def _form_post_page(action: str, fields: dict[str, str]) -> str:
    inputs = "".join(f'<input type="hidden" name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
    return (
        f'<!doctype html><html><body><form id="f" method="post" action="{html.escape(action)}">{inputs}</form>'
        '<script>document.getElementById("f").submit();</script></body></html>'
    )


def _handler_for(platform: PlatformEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            return

        def _send(
            self,
            status: int,
            body: str | bytes,
            content_type: str = "application/json",
            headers: dict[str, str] | None = None,
        ) -> None:
            data = body.encode() if isinstance(body, str) else body
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _json(
            self,
            status: int,
            payload: Any,
            headers: dict[str, str] | None = None,
            content_type: str = "application/json",
        ) -> None:
            self._send(status, json.dumps(payload), content_type, headers)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _bearer_ok(self) -> bool:
            auth = self.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            with platform._lock:
                expiry = platform.access_tokens.get(token)
            return auth.startswith("Bearer ") and expiry is not None and expiry > time.time()

        def do_GET(self) -> None:  # the name http.server calls
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/jwks":
                platform.recorded.jwks_fetches += 1
                return self._json(200, {"keys": [key.jwk() for key in platform.keys]})
            if url.path == "/auth":
                return self._auth(query)
            if url.path == "/memberships":
                return self._memberships(query)
            if url.path == "/lineitems":
                return self._lineitems_get(query)
            if url.path.startswith("/lineitems/"):
                return self._lineitem_get()
            if url.path == "/.well-known/openid-configuration":
                platform.recorded.config_fetches += 1
                return self._json(
                    200,
                    {
                        "issuer": platform.issuer,
                        "authorization_endpoint": f"{platform.base}/auth",
                        "token_endpoint": f"{platform.base}/token",
                        "jwks_uri": f"{platform.base}/jwks",
                        "registration_endpoint": f"{platform.base}/register",
                        "scopes_supported": [
                            "openid",
                            "https://purl.imsglobal.org/spec/lti-ags/scope/score",
                            "https://purl.imsglobal.org/spec/lti-ags/scope/lineitem",
                            "https://purl.imsglobal.org/spec/lti-nrps/scope/contextmembership.readonly",
                        ],
                        "response_types_supported": ["id_token"],
                        "id_token_signing_alg_values_supported": ["RS256"],
                        "https://purl.imsglobal.org/spec/lti-platform-configuration": {
                            "product_family_code": "emulator",
                            "version": "1.0",
                            "messages_supported": [
                                {"type": "LtiResourceLinkRequest"},
                                {"type": "LtiDeepLinkingRequest"},
                            ],
                        },
                        **platform.openid_overrides,
                    },
                )
            if url.path == "/course":
                page = platform.course_page(
                    login_hint=query.get("user", "learner-1"),
                    message_hint=query.get("launch", "launch-1"),
                    storage=query.get("storage") == "1",
                )
                return self._send(200, page, "text/html; charset=utf-8")
            return self._json(404, {"error": "not found"})

        def do_POST(self) -> None:  # the name http.server calls
            url = urlsplit(self.path)
            body = self._body()
            if url.path == "/token":
                return self._token({k: v[0] for k, v in parse_qs(body.decode()).items()})
            if url.path.startswith("/lineitems/") and url.path.endswith("/scores"):
                return self._score(url.path, body)
            if url.path == "/lineitems":
                return self._lineitems_post(body)
            if url.path == "/register":
                return self._register(body)
            if url.path == "/deep_link_return":
                token = parse_qs(body.decode()).get("JWT", [""])[0]
                try:
                    claims = platform.verify_tool_jwt(token, audience=platform.issuer)
                except jwt.InvalidTokenError as exc:
                    return self._send(400, f"bad deep linking response: {exc}", "text/plain")
                platform.recorded.deep_link_responses.append(
                    {"claims": claims, "header": jwt.get_unverified_header(token)}
                )
                return self._send(200, "<!doctype html><p id=done>Content added</p>", "text/html")
            return self._json(404, {"error": "not found"})

        # --- endpoints -------------------------------------------------------------------------------------
        def _auth(self, query: dict[str, str]) -> None:
            platform.recorded.auth_requests.append(query)
            expected = {
                "scope": "openid",
                "response_type": "id_token",
                "response_mode": "form_post",
                "prompt": "none",
                "client_id": platform.client_id,
                "redirect_uri": f"{platform.tool_url}/lti/launch/",
            }
            wrong = [name for name, value in expected.items() if query.get(name) != value]
            if wrong or not query.get("nonce") or not query.get("state") or not query.get("login_hint"):
                return self._send(400, f"bad authentication request: {wrong}", "text/plain")
            claims = platform.launch_claims(
                nonce=query["nonce"], login_hint=query["login_hint"], message_hint=query.get("lti_message_hint", "")
            )
            page = _form_post_page(query["redirect_uri"], {"id_token": platform.sign(claims), "state": query["state"]})
            self._send(200, page, "text/html; charset=utf-8")

        def _token(self, form: dict[str, str]) -> None:
            platform.recorded.token_requests.append(form)
            if form.get("grant_type") != "client_credentials" or form.get("client_assertion_type") != (
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
            ):
                return self._json(400, {"error": "unsupported_grant_type"})
            try:
                claims = platform.verify_tool_jwt(form.get("client_assertion", ""), audience=f"{platform.base}/token")
            except (jwt.InvalidTokenError, jwt.PyJWKClientError) as exc:
                return self._json(401, {"error": "invalid_client", "error_description": str(exc)})
            if (
                claims.get("iss") != platform.client_id
                or claims.get("sub") != platform.client_id
                or not claims.get("jti")
            ):
                return self._json(401, {"error": "invalid_client"})
            token = secrets.token_urlsafe(24)
            granted = set(form.get("scope", "").split())
            if platform.grant_scopes is not None:
                granted &= platform.grant_scopes
            with platform._lock:
                platform.access_tokens[token] = time.time() + platform.token_lifetime
                platform.token_scopes[token] = granted
            self._json(
                200,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": platform.token_lifetime,
                    "scope": " ".join(sorted(granted)),
                },
            )

        def _scopes(self) -> set[str]:
            with platform._lock:
                return set(platform.token_scopes.get(self.headers.get("Authorization", "").removeprefix("Bearer "), ()))

        def _lineitems_get(self, query: dict[str, str]) -> None:
            platform.recorded.lineitem_requests.append(
                {"method": "GET", "query": query, "accept": self.headers.get("Accept", "")}
            )
            time.sleep(platform.lineitems_delay)
            if not self._bearer_ok():
                return self._json(401, {"error": "invalid token"})
            if not {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY} & self._scopes():
                return self._json(403, {"error": "the token has no lineitem scope"})
            if LINEITEMS_TYPE not in self.headers.get("Accept", ""):
                return self._json(406, {"error": "line item container media type expected"})
            with platform._lock:
                if platform.fail_lineitems > 0:
                    platform.fail_lineitems -= 1
                    return self._json(500, {"error": "temporarily broken"})
                items = [
                    item
                    for item in platform.lineitems
                    if not platform.lineitems_filtered
                    or all(query[name] == item.get(key) for name, key in LINEITEM_FILTERS.items() if name in query)
                ]
            limit = int(query.get("limit", platform.lineitems_page_size))
            page = int(query.get("page", "1"))
            headers = {}
            if page * limit < len(items):
                following = {k: v for k, v in query.items() if k != "page"} | {"page": str(page + 1)}
                headers["Link"] = f'<{platform.lineitems_url}?{urlencode(following)}>; rel="next"'
            self._json(200, items[(page - 1) * limit : page * limit], headers, content_type=LINEITEMS_TYPE)

        def _lineitem_get(self) -> None:
            platform.recorded.lineitem_reads.append({"path": self.path, "accept": self.headers.get("Accept", "")})
            if not self._bearer_ok():
                return self._json(401, {"error": "invalid token"})
            if not {SCOPE_LINEITEM, SCOPE_LINEITEM_READONLY} & self._scopes():
                return self._json(403, {"error": "the token has no lineitem scope"})
            if LINEITEM_TYPE not in self.headers.get("Accept", ""):
                return self._json(406, {"error": "line item media type expected"})
            url = f"{platform.base}{self.path}"
            with platform._lock:
                item = next((item for item in platform.lineitems if item["id"] == url), None)
            if item is None:
                return self._json(404, {"error": "no such line item"})
            self._json(200, item, content_type=LINEITEM_TYPE)

        def _lineitems_post(self, body: bytes) -> None:
            platform.recorded.lineitem_requests.append(
                {
                    "method": "POST",
                    "content_type": self.headers.get("Content-Type", ""),
                    "body": json.loads(body or b"{}"),
                }
            )
            if not self._bearer_ok():
                return self._json(401, {"error": "invalid token"})
            if SCOPE_LINEITEM not in self._scopes():
                return self._json(403, {"error": "creating a line item needs the lineitem scope"})
            if self.headers.get("Content-Type") != LINEITEM_TYPE:
                return self._json(415, {"error": "line item media type expected"})
            item = json.loads(body)
            maximum = item.get("scoreMaximum")
            if not isinstance(maximum, int | float) or maximum <= 0 or not item.get("label"):
                return self._json(400, {"error": "scoreMaximum > 0 and label are required"})
            with platform._lock:
                if platform.fail_lineitems > 0:
                    platform.fail_lineitems -= 1
                    return self._json(500, {"error": "temporarily broken"})
                created = {**item, "id": platform.lineitem_url(random_id())}
                platform.lineitems.append(created)
                if platform.lose_created_lineitems > 0:
                    platform.lose_created_lineitems -= 1
                    return self._json(500, {"error": "created, but the answer was lost"})
            self._json(201, created, content_type=LINEITEM_TYPE)

        def _score(self, path: str, body: bytes) -> None:
            if not self._bearer_ok():
                return self._json(401, {"error": "invalid token"})
            if SCOPE_SCORE not in self._scopes():
                return self._json(403, {"error": "the token has no score scope"})
            if self.headers.get("Content-Type") != SCORE_TYPE:
                return self._json(415, {"error": "score media type expected"})
            with platform._lock:
                if platform.fail_scores > 0:
                    platform.fail_scores -= 1
                    return self._json(500, {"error": "temporarily broken"})
                if platform.refuse_scores > 0:
                    platform.refuse_scores -= 1
                    return self._json(400, {"error": "the learner is not in this course"})
                platform.recorded.scores.append({"path": path, **json.loads(body)})
                platform.recorded.score_headers.append(dict(self.headers.items()))
            self._send(204, b"")

        def _memberships(self, query: dict[str, str]) -> None:
            if not self._bearer_ok():
                return self._json(401, {"error": "invalid token"})
            if NRPS_TYPE not in self.headers.get("Accept", ""):
                return self._json(406, {"error": "membership container media type expected"})
            page = int(query.get("page", "1"))
            pages = platform.membership_pages()
            headers = {}
            if page < len(pages):
                headers["Link"] = f'<{platform.base}/memberships?page={page + 1}>; rel="next"'
            container = {
                "id": platform.memberships_url,
                "context": {"id": "course-101", "title": "Physics 101"},
                "members": pages[page - 1],
            }
            self._json(200, container, headers, content_type=NRPS_TYPE)

        def _register(self, body: bytes) -> None:
            if self.headers.get("Authorization") != f"Bearer {platform.registration_token}":
                return self._json(401, {"error": "invalid registration token"})
            request = json.loads(body)
            platform.recorded.registrations.append(request)
            config = request.get("https://purl.imsglobal.org/spec/lti-tool-configuration", {})
            answer = {
                **request,
                "client_id": platform.client_id,
                "registration_client_uri": f"{platform.base}/register/1",
                "https://purl.imsglobal.org/spec/lti-tool-configuration": {
                    **config,
                    "deployment_id": platform.deployment_id,
                },
            }
            self._json(200, answer)

    return Handler


def new_member(
    user_id: str, *, roles: list[str], name: str = "", email: str = "", status: str = "Active"
) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "roles": roles,
        "name": name,
        "email": email,
        "status": status,
        "given_name": name.split(" ")[0] if name else "",
        "family_name": name.split(" ")[-1] if name else "",
    }


def random_id() -> str:
    return uuid.uuid4().hex[:12]
