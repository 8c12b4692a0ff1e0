"""LTI 1.3 Advantage tool: login, launch, JWKS, Deep Linking, AGS, NRPS, dynamic registration.

Built on PyJWT and cryptography (docs/adr/0006-lti-on-pyjwt.md). Pure modules (claims, messages,
keys) do no I/O; services (login, launch, deep_linking, ags, nrps, registration, platforms) do.
"""
