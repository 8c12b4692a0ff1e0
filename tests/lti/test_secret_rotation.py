"""The LTI tool keys' passphrase rotates: keys encrypted with the old passphrase keep signing while
the new one is configured, `lti_keys_reencrypt` moves them, and the old one can then be removed."""

from __future__ import annotations

import io
from typing import Any

import jwt
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django import Settings

from lti import keys, platforms
from lti.errors import LtiError
from lti.models import LtiToolKey

pytestmark = pytest.mark.django_db


def _verifies(token: str) -> dict[str, Any]:
    public = jwt.PyJWK(platforms.tool_jwks()["keys"][0]).key
    return jwt.decode(token, public, algorithms=["RS256"])


def test_lti_key_passphrase_rotation_end_to_end(settings: Settings) -> None:
    settings.LTI_KEY_PASSPHRASE, settings.LTI_KEY_PASSPHRASES_OLD = "old-passphrase", []
    key = platforms.tool_key_active()
    platforms.tool_key_rotate()  # a retired key too
    encrypted = dict(LtiToolKey.objects.values_list("pk", "private_key_encrypted"))
    settings.LTI_KEY_PASSPHRASE, settings.LTI_KEY_PASSPHRASES_OLD = "new-passphrase", ["old-passphrase"]
    assert _verifies(platforms.tool_sign({"n": 1})) == {"n": 1}  # read with the old one meanwhile
    out = io.StringIO()
    call_command("lti_keys_reencrypt", stdout=out)
    assert out.getvalue().strip() == "checked 2 LTI key(s), re-encrypted 2 with the current passphrase"
    for pk, pem in LtiToolKey.objects.values_list("pk", "private_key_encrypted"):
        assert pem != encrypted[pk]
        keys.load_private(pem, passphrase=b"new-passphrase")
        with pytest.raises(ValueError):
            keys.load_private(pem, passphrase=b"old-passphrase")
    settings.LTI_KEY_PASSPHRASES_OLD = []
    assert _verifies(platforms.tool_sign({"n": 2})) == {"n": 2}
    assert LtiToolKey.objects.filter(pk=key.pk).exists()
    # Without any passphrase that opens it: signing is a clear server error and the command changes nothing.
    settings.LTI_KEY_PASSPHRASE = "forgotten"
    with pytest.raises(LtiError, match="LTI_KEY_PASSPHRASE"):
        platforms.tool_sign({"n": 3})
    before = dict(LtiToolKey.objects.values_list("pk", "private_key_encrypted"))
    with pytest.raises(CommandError, match=r"no configured passphrase .*; nothing was changed"):
        call_command("lti_keys_reencrypt", stdout=io.StringIO())
    assert dict(LtiToolKey.objects.values_list("pk", "private_key_encrypted")) == before
