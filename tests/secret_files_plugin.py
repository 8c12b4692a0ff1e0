"""The secrets of a test run, in place before the settings are imported.

pytest-django imports config/settings.py before any conftest.py is loaded. The embedded default reads
VAR_DIR/secret_key and the other secret files (config/secret_files.py): this plugin (pytest.ini:
``-p tests.secret_files_plugin``) makes them in any VAR_DIR (existing files are kept). A production
configuration never reads them and needs SECRET_KEY, CONTENT_KEY_SECRET and LTI_KEY_PASSPHRASE in the
environment: tests/harness.py gives them; for a run that points at a service without the harness
(`make test-unit` sets REDIS_URL to a closed port), the plugin gives random ones for the run.
"""

from __future__ import annotations

import os
import secrets

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    from config.secret_files import EMBEDDED_SECRETS, embedded_secrets_create, production_reasons, var_dir_from_env

    embedded_secrets_create(var_dir=var_dir_from_env())
    if production_reasons(os.environ):
        for name in EMBEDDED_SECRETS.values():
            if not os.environ.get(name) and not os.environ.get(f"{name}_FILE"):
                os.environ[name] = secrets.token_urlsafe(50)
