"""What tests/deploy/test_runbook.py needs from docs/operations.md and deploy/: the shell commands of
the runbook, the commands the shipped systemd units start, and the host commands no test can run.

Pure: reads files, runs nothing. The unit tier checks that every command of the runbook is either run
by the runbook test (RUNBOOK_COMMANDS) or listed here with the reason it cannot be (HOST_ONLY)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "operations.md"
SYSTEMD = ROOT / "deploy" / "systemd"
INSTALL_ROOT = "/srv/lessons/"  # where docs/operations.md installs the checkout

# Commands of the runbook that change the host itself: they need root, systemd as PID 1, or the
# machine's own /etc; the test machine has the packages (`make system-deps`) and runs the rest in
# folders of its own. Each entry: the reason it is not run.
HOST_ONLY = {
    "apt-get install -y python3.11 python3.11-venv nodejs npm postgresql redis-server nginx git make": (
        "installs Debian packages; the test machine has them (make system-deps)"
    ),
    "useradd --system --home-dir /srv/lessons --shell /usr/sbin/nologin lessons": "adds a system user",
    "install -d -o lessons -g lessons /srv/lessons": "the test runs in the checkout itself",
    "git clone https://example.edu/lessons.git /srv/lessons": "the test runs in the checkout itself",
    "createuser --pwprompt lessons": "needs the postgres account; the test makes a database of its own",
    "createdb --owner lessons lessons": "needs the postgres account; the test makes a database of its own",
    "cp deploy/systemd/lessons-* /etc/systemd/system/": "writes the host's systemd folder",
    "systemctl daemon-reload": "needs systemd as PID 1",
    "systemctl enable --now lessons-web lessons-worker-quick lessons-worker-ladder lessons-worker-replication "
    "lessons-worker-lti lessons-qoe-drain lessons-qoe-live": (
        "needs systemd as PID 1; the test starts each unit's ExecStart itself"
    ),
    "systemctl enable --now lessons-pipeline-resume.timer lessons-lti-prune.timer lessons-lti-sync-roster.timer "
    "lessons-lti-grades-reconcile.timer lessons-replicas-verify.timer": (
        "needs systemd as PID 1; the test runs each timer's command once"
    ),
    "cp -r deploy/nginx /etc/nginx/lessons": "writes the host's /etc/nginx; the test copies into a folder of its own",
    "ln -s /etc/nginx/lessons/lessons-site.conf /etc/nginx/sites-enabled/lessons": (
        "writes the host's /etc/nginx; the test includes the file from its own nginx.conf"
    ),
    "ln -s /etc/nginx/lessons/lessons-edge-site.conf /etc/nginx/sites-enabled/lessons-edge": (
        "writes the host's /etc/nginx; the test includes the file from its own nginx.conf"
    ),
    "systemctl reload nginx": "needs systemd; the test starts its own nginx",
    "systemctl stop lessons-worker-quick lessons-worker-ladder lessons-worker-replication lessons-worker-lti": (
        "needs systemd; the test sends the workers SIGTERM, which is what systemctl stop does (KillSignal)"
    ),
    "systemctl restart lessons-web": "needs systemd; the test starts the web process itself",
    "systemctl start lessons-worker-quick lessons-worker-ladder lessons-worker-replication lessons-worker-lti": (
        "needs systemd; the test starts each worker's ExecStart itself"
    ),
    "systemctl restart lessons-qoe-drain lessons-qoe-live": "needs systemd; the test starts both itself",
}

# The commands of the runbook that tests/deploy/test_runbook.py runs, in the order it runs them.
RUNBOOK_COMMANDS = (
    "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'",
    "set -a && . /etc/lessons/lessons.env && set +a",
    "make install",
    ".venv/bin/python manage.py migrate --noinput",
    ".venv/bin/python manage.py collectstatic --noinput",
    'DJANGO_SUPERUSER_PASSWORD="$(cat /etc/lessons/secrets/admin_password)" .venv/bin/python manage.py '
    "createsuperuser --noinput --username admin --email admin@example.edu",
    ".venv/bin/python manage.py check --deploy --fail-level WARNING",
    "systemd-analyze verify deploy/systemd/lessons-*.service deploy/systemd/lessons-*.timer",
    "promtool check config deploy/prometheus/prometheus.yml",
    'redis-cli -u "$REDIS_URL" config get maxmemory-policy',
    '(umask 077 && printf \'set $lessons_secret "%s";\\nset $lessons_origin_secret "%s";\\n\' '
    '"$(cat /etc/lessons/secrets/playback_nginx_secret)" "$(cat /etc/lessons/secrets/edge_origin_secret)" '
    "> /etc/nginx/lessons/lessons-edge-secrets.conf)",
    "nginx -t",
    ".venv/bin/python manage.py pipeline_resume",
    ".venv/bin/python manage.py lti_prune",
    ".venv/bin/python manage.py lti_sync_roster --queue",
    ".venv/bin/python manage.py lti_grades_reconcile --queue",
    ".venv/bin/python manage.py replicas verify --quick",
    'pg_dump --format=custom --file=lessons.dump "$DATABASE_URL"',
    'pg_restore --no-owner --dbname="$RESTORE_DATABASE_URL" lessons.dump',
)


def doc_commands(text: str | None = None) -> list[str]:
    """Every command in the runbook's ```sh blocks: one per line (backslash continuations joined),
    comments dropped, a leading `sudo` or `sudo -u USER` taken off (who runs it is not what runs)."""
    text = DOC.read_text() if text is None else text
    commands = []
    for block in re.findall(r"^```sh\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                commands.append(re.sub(r"^sudo (-u \S+ )?", "", line))
    return commands


def doc_ini_block(heading_text: str) -> dict[str, str]:
    """The KEY=VALUE lines of the first ```ini block after `heading_text` in the runbook."""
    text = DOC.read_text()
    block = re.search(r"^```ini\n(.*?)^```", text[text.index(heading_text) :], flags=re.MULTILINE | re.DOTALL)
    assert block is not None, heading_text
    pairs = (line.split("=", 1) for line in block.group(1).splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs}


def unit_field(unit: Path, field: str) -> list[str]:
    return [line.split("=", 1)[1] for line in unit.read_text().splitlines() if line.startswith(f"{field}=")]


def process_units() -> dict[str, list[str]]:
    """Long-running units (the ones with an [Install] for multi-user.target) -> their ExecStart argv,
    relative to the checkout (as the runbook's table writes them)."""
    units = {}
    for unit in sorted(SYSTEMD.glob("lessons-*.service")):
        if "WantedBy=multi-user.target" in unit.read_text():
            (command,) = unit_field(unit, "ExecStart")
            units[unit.stem] = shlex.split(command.replace(INSTALL_ROOT, ""))
    return units


def table_commands() -> list[str]:
    """The commands of the runbook's "Processes" table (the web process's and every worker's)."""
    text = DOC.read_text()
    section = text[text.index("## Processes") : text.index("The queues:")]
    return re.findall(r"\| `(\.venv/bin/python [^`]+)` \|", section)
