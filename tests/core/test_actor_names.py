"""Work is sent by actor name (core/tasks.py): every name the code sends to is declared in a web process.

A name that no process declares would be logged and dropped at run time, so this reads every literal
name passed to send_on_commit / send_now in the apps and asks a freshly started Django for it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APPS = ["analytics", "config", "core", "courses", "lti", "media_pipeline", "outbound", "playback"]
SENT = re.compile(r"""\bsend_(?:on_commit|now)\(\s*["']([a-z_]+)["']""")


def sent_names() -> set[str]:
    names: set[str] = set()
    for app in APPS:
        for path in (ROOT / app).rglob("*.py") if (ROOT / app).is_dir() else []:
            names.update(SENT.findall(path.read_text()))
    return names


def test_every_actor_the_code_sends_to_is_declared_in_a_web_process() -> None:
    names = sent_names()
    assert names, "no send_on_commit/send_now call found: the pattern is out of date"
    script = (
        "import django, json, dramatiq; django.setup(); "
        "print(json.dumps(sorted(dramatiq.get_broker().get_declared_actors())))"
    )
    # A fresh process that is not a worker: what a web server or a management command would have.
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    declared = set(json.loads(completed.stdout.strip().splitlines()[-1]))
    assert names - declared == set()
