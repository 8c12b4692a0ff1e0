"""What LtiConfig.ready sets up in every process (web server, worker, test run)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from config.secret_files import embedded_secrets_create

ROOT = Path(__file__).resolve().parents[2]
# A fresh process that imports nothing of lti itself: only Django's set-up has run.
PROBE = """
import django; django.setup()
import dramatiq
from courses import hooks
broker = dramatiq.get_broker()
print(sorted(name for name in ("ags_post_score", "nrps_sync_context") if name in broker.get_declared_actors()))
print([f"{f.__module__}.{f.__qualname__}" for f in hooks.progress_recorded_listeners])
"""


def test_the_actors_are_found_by_name_and_the_gradebook_listens(tmp_path: Path) -> None:
    embedded_secrets_create(var_dir=tmp_path)  # the settings read them; `make run` makes them
    completed = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", "DJANGO_SETTINGS_MODULE": "config.settings", "VAR_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.splitlines() == [
        "['ags_post_score', 'nrps_sync_context']",
        "['lti.ags.scores_update']",
    ]
