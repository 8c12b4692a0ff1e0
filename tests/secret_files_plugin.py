"""The embedded default's secret files for a test run, made before the settings are imported.

pytest-django imports config/settings.py before any conftest.py is loaded, and the settings only read
VAR_DIR/secret_key and the other secret files (config/secret_files.py). tests/harness.py makes them in
its own VAR_DIR; this plugin (pytest.ini: ``-p tests.secret_files_plugin``) makes them when the suite
runs without the harness too (TESTS_WITHOUT_HARNESS=1, any VAR_DIR). Existing files are kept.
"""

from __future__ import annotations

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config, parser: pytest.Parser, args: list[str]) -> None:
    from config.secret_files import embedded_secrets_create, var_dir_from_env

    embedded_secrets_create(var_dir=var_dir_from_env())
