"""Amazon CloudFront signed cookies and signed URLs with a custom policy (pure apart from RSA).

A custom policy on a wildcard resource covers every object of one version prefix; players keep
cookies for every segment request, so cookies are what a player needs (signed URLs suit single
objects such as the poster). CloudFront requires RSA-SHA1 (PKCS#1 v1.5) over the policy JSON and
its own URL-safe base64 ('+' -> '-', '=' -> '_', '/' -> '~'). The policy JSON is built exactly as
botocore's ``CloudFrontSigner.build_policy`` does, which the tests use as the reference.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from playback.binding import UNBOUND, Binding


def cloudfront_b64(data: bytes) -> str:
    return base64.b64encode(data).replace(b"+", b"-").replace(b"=", b"_").replace(b"/", b"~").decode()


def custom_policy(*, resource: str, expires_at: int, client_ip: str | None = None) -> str:
    condition: dict[str, dict[str, object]] = {"DateLessThan": {"AWS:EpochTime": expires_at}}
    if client_ip:
        condition["IpAddress"] = {"AWS:SourceIp": client_ip if "/" in client_ip else f"{client_ip}/32"}
    return json.dumps({"Statement": [{"Resource": resource, "Condition": condition}]}, separators=(",", ":"))


class CloudFrontSigner:
    def __init__(self, *, key_pair_id: str, private_key_pem: bytes, base_url: str) -> None:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("CloudFront needs an RSA private key")
        self._key = key
        self._key_pair_id = key_pair_id
        self._base = base_url.rstrip("/")

    def _sign(self, policy: str) -> str:
        # RSA-SHA1 is what CloudFront's signed URLs and cookies are verified with.
        return cloudfront_b64(self._key.sign(policy.encode(), padding.PKCS1v15(), hashes.SHA1()))

    def sign_prefix(self, *, prefix: str, expires_at: int, binding: Binding = UNBOUND) -> str:
        if binding.session:
            raise ValueError("CloudFront cannot check a Django session binding")
        return f"{self._base}/{prefix}"

    def cookies_for_prefix(
        self, *, prefix: str, expires_at: int, client_ip: str | None = None, other_bases: tuple[str, ...] = ()
    ) -> dict[str, str]:
        """The three cookies for every object of ``prefix``. With ``other_bases`` (more storage regions
        behind other distributions sharing one cookie domain) the resource matches any host, still
        only under the prefix: one set of cookies must serve every pathway the player may take."""
        resource = f"{self._base}/{prefix}*"
        if any(base.rstrip("/") != self._base for base in other_bases):
            resource = f"http*://*/{prefix}*"
        policy = custom_policy(resource=resource, expires_at=expires_at, client_ip=client_ip)
        return {
            "CloudFront-Policy": cloudfront_b64(policy.encode()),
            "CloudFront-Signature": self._sign(policy),
            "CloudFront-Key-Pair-Id": self._key_pair_id,
        }

    def signed_url(self, *, url: str, expires_at: int, client_ip: str | None = None) -> str:
        policy = custom_policy(resource=url, expires_at=expires_at, client_ip=client_ip)
        separator = "&" if "?" in url else "?"
        query = (
            f"Policy={quote(cloudfront_b64(policy.encode()), safe='-_~')}"
            f"&Signature={quote(self._sign(policy), safe='-_~')}&Key-Pair-Id={self._key_pair_id}"
        )
        return f"{url}{separator}{query}"
