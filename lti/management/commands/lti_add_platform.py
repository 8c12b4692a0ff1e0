"""Register an LMS (LTI 1.3 platform) without the admin.

    python manage.py lti_add_platform --issuer https://lms.example.edu --client-id abc \
        --deployment-id 1 [--deployment-id 2] --auth-login-url ... --auth-token-url ... --jwks-url ...

Running it again for the same issuer and client id updates the endpoints and adds deployments.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.validators import URLValidator

from lti.platforms import platform_register


class Command(BaseCommand):
    help = "Register an LTI 1.3 platform (LMS) and its deployment ids."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--issuer", required=True)
        parser.add_argument("--client-id", required=True)
        parser.add_argument("--deployment-id", action="append", required=True, dest="deployment_ids")
        parser.add_argument("--auth-login-url", required=True)
        parser.add_argument("--auth-token-url", required=True)
        parser.add_argument("--jwks-url", required=True)
        parser.add_argument("--auth-token-audience", default="")
        parser.add_argument("--name", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        validate = URLValidator(schemes=["http", "https"])
        for name in ("issuer", "auth_login_url", "auth_token_url", "jwks_url"):
            try:
                validate(options[name])
            except ValidationError as exc:
                raise CommandError(f"--{name.replace('_', '-')} is not a URL: {options[name]!r}") from exc
        platform = platform_register(
            issuer=options["issuer"],
            client_id=options["client_id"],
            auth_login_url=options["auth_login_url"],
            auth_token_url=options["auth_token_url"],
            jwks_url=options["jwks_url"],
            deployment_ids=options["deployment_ids"],
            name=options["name"],
            auth_token_audience=options["auth_token_audience"],
        )
        deployments = ", ".join(platform.deployments.order_by("deployment_id").values_list("deployment_id", flat=True))
        self.stdout.write(
            f"platform {platform.pk}: {platform.issuer} client {platform.client_id}; deployments {deployments}"
        )
