"""docs/operations.md, run for real: install steps, the processes of the shipped systemd units, nginx
with the shipped site and edge configs over HTTPS, the periodic jobs, a backup and its restore.

Production-like: the runbook's own environment file (DEBUG=0, HTTPS=1, SECURE_PROXY_SSL_HEADER=1,
TRUSTED_PROXIES, secrets as NAME_FILE) with only the addresses of the harness's PostgreSQL (a
database of the test's own), Redis (a database index of its own) and SeaweedFS S3 put in, and the
folders under /etc and /srv moved into the test's folder. nginx gets the shipped files with only
listen ports, paths, the upstream address and the monitoring address changed."""

from __future__ import annotations

import base64
import http.client
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
import redis
from dramatiq import Message
from dramatiq.brokers.redis import RedisBroker

from playback.signers.nginx import secure_link_token
from tests.deploy.runbook import (
    HOST_ONLY,
    INSTALL_ROOT,
    ROOT,
    RUNBOOK_COMMANDS,
    SYSTEMD,
    doc_commands,
    doc_ini_block,
    process_units,
    table_commands,
    unit_field,
)

DEPLOY_NGINX = ROOT / "deploy" / "nginx"
SITE, EDGE_HOST = "video.example.edu", "cdn.example.edu"
MONITORING, OUTSIDER = "127.0.0.2", "127.0.0.3"
REDIS_DB = 7  # a database index of our own on the harness's Redis: our workers never eat other tests' work


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Host:
    """The test's stand-in for the host: /etc/lessons, /etc/nginx/lessons and VAR_DIR in one folder."""

    root: Path
    base_env: dict[str, str]
    ran: list[str] = field(default_factory=list)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def etc(self) -> Path:
        return self.root / "etc" / "lessons"

    @property
    def nginx(self) -> Path:
        return self.root / "nginx"

    def moved(self, command: str) -> str:
        """The runbook's command with the host's folders moved into ours (nothing else changes)."""
        return command.replace("/etc/lessons/", f"{self.etc}/").replace("/etc/nginx/lessons/", f"{self.nginx}/lessons/")

    def run(self, command: str, *, extra_env: dict[str, str] | None = None, cwd: Path = ROOT,
            check: bool = True, load: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
        """Run one command of the runbook, as the runbook says: bash, in the checkout, with the
        environment file loaded by the runbook's own line (once there is one)."""
        assert command in RUNBOOK_COMMANDS, command
        self.ran.append(command)
        loading = self.moved(RUNBOOK_COMMANDS[1])
        script = f"{loading} && {self.moved(command)}" if load else self.moved(command)
        started = time.monotonic()
        completed = subprocess.run(
            ["bash", "-c", script], cwd=cwd, env={**self.base_env, **(extra_env or {})},
            capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        self.seconds[command] = self.seconds.get(command, 0.0) + time.monotonic() - started
        if check:
            assert completed.returncode == 0, f"{command}\n{completed.stdout[-3000:]}\n{completed.stderr[-3000:]}"
        return completed

    def start(self, name: str, argv: list[str], environment: list[str]) -> None:
        """Start a unit's ExecStart (argv) with its Environment= lines, as systemd would: in the
        checkout, with the environment file loaded."""
        load = self.moved(RUNBOOK_COMMANDS[1])
        exports = "".join(f"export {shlex.quote(item)} && " for item in environment)
        log = (self.root / f"{name}.log").open("wb")
        self.processes[name] = subprocess.Popen(
            ["bash", "-c", f"{load} && {exports}exec {shlex.join(argv)}"],
            cwd=ROOT, env=self.base_env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip

    def log(self, name: str) -> str:
        return (self.root / f"{name}.log").read_text(errors="replace")[-3000:]

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def _database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
def databases() -> Iterator[tuple[str, str]]:
    """Two empty databases on the harness's PostgreSQL: the deployment's, and one to restore into."""
    base = os.environ["DATABASE_URL"]
    names = [f"runbook_{uuid.uuid4().hex[:10]}", f"restored_{uuid.uuid4().hex[:10]}"]
    with psycopg.connect(base, autocommit=True) as connection:
        for name in names:
            connection.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _database_url(base, names[0]), _database_url(base, names[1])
    finally:
        with psycopg.connect(base, autocommit=True) as connection:
            for name in names:
                connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _self_signed(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", f"/CN={SITE}", "-addext", f"subjectAltName=DNS:{SITE},DNS:{EDGE_HOST}"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def _shipped(name: str, replacements: dict[str, str]) -> str:
    """A shipped nginx file with only the given lines changed; each must be in the file as shipped."""
    text = (DEPLOY_NGINX / name).read_text()
    for old, new in replacements.items():
        assert old in text, f"{name} no longer has {old!r}: update the test"
        text = text.replace(old, new)
    return text


def _nginx_files(host: Host, *, web_port: int, ports: dict[str, int], metrics_ports: dict[str, int]) -> Path:
    """deploy/nginx copied to <nginx>/lessons (as the runbook's `cp -r`), the two sites adapted, and an
    nginx.conf that includes them inside http {} as Debian's does with sites-enabled/."""
    lessons = host.nginx / "lessons"
    shutil.copytree(DEPLOY_NGINX, lessons)
    cert, key = _self_signed(host.nginx)
    tls = {
        "/etc/ssl/lessons/fullchain.pem": str(cert), "/etc/ssl/lessons/key.pem": str(key),
        "/etc/ssl/lessons/cdn.fullchain.pem": str(cert), "/etc/ssl/lessons/cdn.key.pem": str(key),
    }  # fmt: skip
    site_tls = {k: v for k, v in tls.items() if "cdn" not in k}
    edge_tls = {k: v for k, v in tls.items() if "cdn" in k}
    (lessons / "lessons-site.conf").write_text(
        _shipped(
            "lessons-site.conf",
            {
                "    listen 80;\n    listen [::]:80;\n": f"    listen 127.0.0.1:{ports['site_http']};\n",
                "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n": (
                    f"    listen 127.0.0.1:{ports['site_https']} ssl http2;\n"
                ),
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{web_port};",
                "alias /srv/lessons/var/staticfiles/;": f"alias {host.root / 'var' / 'staticfiles'}/;",
                "allow 192.0.2.0/24;": f"allow {MONITORING};",
                **{
                    f"/metrics/worker-{queue:<12} 127.0.0.1:{9191 + n};": f"/metrics/worker-{queue} 127.0.0.1:{port};"
                    for n, (queue, port) in enumerate(metrics_ports.items())
                },
                **site_tls,
            },
        )
    )
    (lessons / "lessons-edge-site.conf").write_text(
        _shipped(
            "lessons-edge-site.conf",
            {
                "    listen 80;\n    listen [::]:80;\n": f"    listen 127.0.0.1:{ports['edge_http']};\n",
                "    listen 443 ssl http2;\n    listen [::]:443 ssl http2;\n": (
                    f"    listen 127.0.0.1:{ports['edge_https']} ssl http2;\n"
                ),
                "/var/log/nginx/lessons-edge.json.log": str(host.nginx / "edge.json.log"),
                **edge_tls,
            },
        )
    )
    (lessons / "lessons-edge-http.conf").write_text(
        _shipped(
            "lessons-edge-http.conf",
            {
                "/var/cache/nginx/lessons ": f"{host.nginx / 'cache'} ",
                "server 127.0.0.1:8000;": f"server 127.0.0.1:{web_port};",
            },
        )
    )
    temp = "".join(f"  {n}_temp_path {host.nginx / n};\n" for n in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    conf = host.nginx / "nginx.conf"
    conf.write_text(
        f"""daemon off;
pid {host.nginx / "nginx.pid"};
error_log {host.nginx / "error.log"};
events {{}}
http {{
{temp}  include /etc/nginx/mime.types;
  access_log {host.nginx / "access.log"};
  include lessons/lessons-site.conf;
  include lessons/lessons-edge-site.conf;
}}
"""
    )
    return conf


Answer = tuple[int, dict[str, str], bytes]


def _https(port: int, method: str, path: str, *, host: str = SITE, source: str = "127.0.0.1",
           headers: dict[str, str] | None = None, body: bytes | None = None) -> Answer:  # fmt: skip
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=30, context=context, source_address=(source, 0))
    try:
        connection.request(method, path, body=body, headers={"Host": host, **(headers or {})})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


def _wait_ready(port: int, host: Host) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            status, _headers, body = _https(port, "GET", "/readyz")
            if status == 200:
                return
        except OSError:
            status, body = 0, b""
        for name, process in host.processes.items():
            assert process.poll() is None, f"{name} exited\n{host.log(name)}"
        assert time.monotonic() < deadline, f"/readyz: {status} {body!r}\n{host.log('lessons-web')}"
        time.sleep(0.2)


def _wait_listening(port: int, host: Host, name: str) -> None:
    """Until a worker's metrics exporter accepts connections: each worker starts it once it has imported
    Django and its actors, which on a busy machine comes seconds after the web process is ready."""
    deadline = time.monotonic() + 60
    while True:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        assert host.processes[name].poll() is None, f"{name} exited\n{host.log(name)}"
        assert time.monotonic() < deadline, f"{name}: nothing listens on its metrics port\n{host.log(name)}"
        time.sleep(0.2)


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, (pattern, text[:500])
    return match.group(1)


def _admin_session(port: int, password: str) -> str:
    status, headers, page = _https(port, "GET", "/admin/login/")
    assert status == 200
    csrf_cookie = _found(r"csrftoken=([^;]+)", headers["set-cookie"])
    token = _found(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.decode())
    form = f"csrfmiddlewaretoken={token}&username=admin&password={password}&next=/admin/"
    status, headers, _ = _https(
        port, "POST", "/admin/login/", body=form.encode(),
        headers={"Cookie": f"csrftoken={csrf_cookie}", "Content-Type": "application/x-www-form-urlencoded",
                 "Origin": f"https://{SITE}", "Referer": f"https://{SITE}/admin/login/"},
    )  # fmt: skip
    assert status == 302, status  # signed in
    return _found(r"sessionid=([^;]+)", headers["set-cookie"])


def _websocket_first_frame(port: int, session: str) -> tuple[bytes, bytes]:
    """Open the live dashboard's websocket through nginx; the handshake answer and the first frame."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, context.wrap_socket(raw) as tls:
        key = base64.b64encode(os.urandom(16)).decode()
        tls.sendall(
            (f"GET /ws/analytics/live/ HTTP/1.1\r\nHost: {SITE}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: https://{SITE}\r\n"
             f"Cookie: sessionid={session}\r\n\r\n").encode()
        )  # fmt: skip
        received = b""
        while b"\r\n\r\n" not in received:
            received += tls.recv(4096)
        handshake, _, frame = received.partition(b"\r\n\r\n")
        while len(frame) < 2:
            frame += tls.recv(4096)
        return handshake, frame


@pytest.fixture
def host_root() -> Iterator[Path]:
    """A folder nginx's unprivileged workers can read (static files, the cache). Not under pytest's
    tmp_path: a pytest run starting meanwhile makes /tmp/pytest-of-<user> 0700 again."""
    root = Path(tempfile.mkdtemp(prefix="lessons-runbook-"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_the_runbook_runs(host_root: Path, databases: tuple[str, str]) -> None:
    database_url, restore_url = databases
    harness_redis = urlsplit(os.environ["REDIS_URL"])
    redis_url = urlunsplit(harness_redis._replace(path=f"/{REDIS_DB}"))
    base_env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    host = Host(root=host_root, base_env=base_env)
    host.etc.joinpath("secrets").mkdir(parents=True)

    # Secrets, made with the runbook's command; S3 keys are the harness's.
    for name in ("secret_key", "content_key_secret", "lti_key_passphrase", "admin_password",
                 "playback_nginx_secret", "edge_origin_secret"):  # fmt: skip
        made = host.run(RUNBOOK_COMMANDS[0], load=False)
        (host.etc / "secrets" / name).write_text(made.stdout)
    (host.etc / "secrets" / "s3_access_key_id").write_text(os.environ["S3_ACCESS_KEY_ID"])
    (host.etc / "secrets" / "s3_secret_access_key").write_text(os.environ["S3_SECRET_ACCESS_KEY"])

    # The runbook's environment file, with the addresses of this machine's services and our folders.
    env_file = doc_ini_block("### The environment file")
    assert {env_file[k] for k in ("DEBUG", "HTTPS", "SECURE_PROXY_SSL_HEADER")} == {"0", "1"}
    env_file.update(
        {
            "VAR_DIR": str(host_root / "var"), "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "S3_BUCKET": os.environ["S3_BUCKET"], "S3_REGION": os.environ["S3_REGION"],
            "S3_ENDPOINT_URL": os.environ["S3_ENDPOINT_URL"],
            # The edge (docs/operations.md, "The edge").
            "PLAYBACK_SIGNER": "nginx", "PLAYBACK_EDGE_URL": f"https://{EDGE_HOST}",
            "PLAYBACK_NGINX_SECRET_FILE": "/etc/lessons/secrets/playback_nginx_secret",
            "EDGE_ORIGIN_SECRET_FILE": "/etc/lessons/secrets/edge_origin_secret",
        }
    )  # fmt: skip
    (host.etc / "lessons.env").write_text("".join(f"{key}={host.moved(value)}\n" for key, value in env_file.items()))
    (host_root / "var").mkdir()
    host.run(RUNBOOK_COMMANDS[1], load=False)

    started = time.monotonic()
    phases = [("", started)]
    host.run("make install")
    # Steps that do not depend on each other run side by side (the runbook's order is kept between
    # steps that do): the test is about the commands, not about waiting for a busy machine.
    with ThreadPoolExecutor(max_workers=4) as pool:
        static = pool.submit(host.run, ".venv/bin/python manage.py collectstatic --noinput")
        host.run(".venv/bin/python manage.py migrate --noinput")
        admin = pool.submit(host.run, RUNBOOK_COMMANDS[5])
        checked = host.run(".venv/bin/python manage.py check --deploy --fail-level WARNING")
        static.result(), admin.result()
    assert "System check identified no issues" in checked.stdout, checked.stdout + checked.stderr
    policy = host.run('redis-cli -u "$REDIS_URL" config get maxmemory-policy')
    assert policy.stdout.split() == ["maxmemory-policy", "noeviction"]

    phases.append(("install", time.monotonic()))
    # The shipped units, checked with paths pointing at this checkout, and the scrape config.
    units = host_root / "deploy" / "systemd"
    units.mkdir(parents=True)
    for unit in SYSTEMD.iterdir():
        (units / unit.name).write_text(unit.read_text().replace(INSTALL_ROOT.rstrip("/"), str(ROOT)))
    if shutil.which("systemd-analyze"):
        host.run(
            "systemd-analyze verify deploy/systemd/lessons-*.service deploy/systemd/lessons-*.timer", cwd=host_root
        )
    (host_root / "deploy" / "prometheus").mkdir()
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(ROOT / "deploy" / "prometheus" / name, host_root / "deploy" / "prometheus" / name)
    host.run("promtool check config deploy/prometheus/prometheus.yml", cwd=host_root)

    phases.append(("units and promtool", time.monotonic()))
    # Every process, with its unit's ExecStart and Environment= lines (only the web port changes).
    web_port = _free_port()
    units_argv = process_units()
    assert sorted(units_argv) == [
        "lessons-qoe-drain", "lessons-qoe-live", "lessons-web", "lessons-worker-ladder", "lessons-worker-lti",
        "lessons-worker-quick", "lessons-worker-replication",
    ]  # fmt: skip
    assert sorted(shlex.join(argv) for argv in units_argv.values()) == sorted(table_commands())
    ports = {name: _free_port() for name in ("site_http", "site_https", "edge_http", "edge_https")}
    metrics_ports = {queue: _free_port() for queue in ("quick", "ladder", "replication", "lti")}
    redis_client = redis.Redis.from_url(redis_url)
    nginx: subprocess.Popen[bytes] | None = None
    try:
        for name, argv in units_argv.items():
            if name == "lessons-web":
                assert argv[argv.index("--port") + 1] == "8000" and argv[argv.index("--host") + 1] == "127.0.0.1"
                argv = [*argv[: argv.index("--port") + 1], str(web_port), *argv[argv.index("--port") + 2 :]]
            environment = unit_field(SYSTEMD / f"{name}.service", "Environment")
            if name.startswith("lessons-worker-"):  # each unit has its own /tmp (PrivateTmp) and port
                queue = name.removeprefix("lessons-worker-")
                moved = {"/tmp/lessons-metrics": str(host_root / f"metrics-{queue}"),
                         f"dramatiq_prom_port={9191 + list(metrics_ports).index(queue)}":
                         f"dramatiq_prom_port={metrics_ports[queue]}"}  # fmt: skip
                for old, new in moved.items():
                    assert any(old in item for item in environment), (name, old)
                    environment = [item.replace(old, new) for item in environment]
            host.start(name, argv, environment)

        conf = _nginx_files(host, web_port=web_port, ports=ports, metrics_ports=metrics_ports)
        host.run(RUNBOOK_COMMANDS[10])  # the edge's secrets file, for root only
        assert (host.nginx / "lessons" / "lessons-edge-secrets.conf").stat().st_mode & 0o777 == 0o600
        tested = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True, timeout=30)
        host.ran.append("nginx -t")
        assert tested.returncode == 0, tested.stderr
        nginx = subprocess.Popen(["nginx", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        https = ports["site_https"]
        _wait_ready(https, host)

        phases.append(("processes and nginx up", time.monotonic()))
        # Through nginx over HTTPS: ready, a page, the redirect from port 80, a big body, /metrics.
        status, _headers, body = _https(https, "GET", "/readyz")
        assert (status, b'"status": "ok"' in body) == (200, True), body
        status, _headers, page = _https(https, "GET", "/")
        assert status == 200 and b"<html" in page.lower()
        plain = http.client.HTTPConnection("127.0.0.1", ports["site_http"], timeout=10)
        plain.request("GET", "/courses/?x=1", headers={"Host": SITE})
        redirect = plain.getresponse()
        assert (redirect.status, redirect.getheader("Location")) == (301, f"https://{SITE}/courses/?x=1")
        plain.close()
        big = secrets.token_bytes(30 * 1024 * 1024)
        status, _headers, body = _https(https, "POST", "/accounts/login/", body=big,
                                        headers={"Content-Type": "application/octet-stream"})  # fmt: skip
        assert status == 403 and b"CSRF" in body, (status, body[:300])  # Django's answer: nginx let it through
        status, _headers, _ = _https(https, "GET", "/metrics", source=OUTSIDER)
        assert status == 403
        status, _headers, metrics = _https(https, "GET", "/metrics", source=MONITORING)
        assert status == 200 and b"dramatiq_queue_depth" in metrics and b"django_http_requests" in metrics

        # Each worker's metrics, through nginx, to the monitoring network only: a message the lti
        # worker runs shows in its counters (Dramatiq's; ours are in the same multiprocess files).
        for queue, port in metrics_ports.items():
            _wait_listening(port, host, f"lessons-worker-{queue}")
        assert _https(https, "GET", "/metrics/worker-lti", source=OUTSIDER)[0] == 403
        for queue in metrics_ports:
            assert _https(https, "GET", f"/metrics/worker-{queue}", source=MONITORING)[0] == 200, queue
        broker = RedisBroker(url=redis_url)
        broker.declare_queue("lti")
        broker.enqueue(Message(queue_name="lti", actor_name="nrps_sync_context", args=(0,), kwargs={}, options={}))
        broker.close()
        counted = b'dramatiq_messages_total{actor_name="nrps_sync_context",queue_name="lti"} 1.0'
        deadline = time.monotonic() + 30
        while counted not in (worker_metrics := _https(https, "GET", "/metrics/worker-lti", source=MONITORING)[2]):
            assert time.monotonic() < deadline, worker_metrics.decode()[-2000:] + host.log("lessons-worker-lti")
            time.sleep(0.2)

        phases.append(("site checks and worker metrics", time.monotonic()))
        # The live dashboard's websocket, as the first administrator, through nginx; qoe_live publishes.
        session = _admin_session(https, (host.etc / "secrets" / "admin_password").read_text().strip())
        handshake, frame = _websocket_first_frame(https, session)
        assert handshake.startswith(b"HTTP/1.1 101 "), handshake
        assert frame[0] == 0x81  # a text frame, unfragmented

        # The edge, as the runbook places it, fetching from the origin that runs with HTTPS=1.
        prefix = f"lessons/{uuid.uuid4()}/v1/"
        content = secrets.token_bytes(200_000)
        from tests.harness import s3_client

        s3 = s3_client(os.environ["S3_ENDPOINT_URL"])
        s3.put_object(Bucket=os.environ["S3_BUCKET"], Key=f"{prefix}video/seg_1.m4s", Body=content)
        try:
            expires = int(time.time()) + 600
            nginx_secret = (host.etc / "secrets" / "playback_nginx_secret").read_text().strip()
            token = secure_link_token(secret=nginx_secret, prefix=prefix, expires_at=expires)
            path = f"/s/{token}/{expires}/{prefix}video/seg_1.m4s"
            first = _https(ports["edge_https"], "GET", path, host=EDGE_HOST)
            errors = (host.nginx / "error.log").read_text()[-2000:]
            assert (first[0], first[2] == content, first[1].get("x-cache-status")) == (200, True, "MISS"), errors
            second = _https(ports["edge_https"], "GET", path, host=EDGE_HOST)
            assert (second[0], second[2] == content, second[1]["x-cache-status"]) == (200, True, "HIT")
            assert _https(ports["edge_https"], "GET", path.replace(token, "A" * 22), host=EDGE_HOST)[0] == 403
        finally:
            s3.delete_object(Bucket=os.environ["S3_BUCKET"], Key=f"{prefix}video/seg_1.m4s")

        phases.append(("websocket and edge", time.monotonic()))
        # The periodic jobs, once each, with every process running.
        # Backup and restore (the dump beside them): the administrator is in the restored database.
        with ThreadPoolExecutor(max_workers=5) as pool:
            dump = pool.submit(host.run, 'pg_dump --format=custom --file=lessons.dump "$DATABASE_URL"', cwd=host_root)
            periodic = RUNBOOK_COMMANDS[RUNBOOK_COMMANDS.index("nginx -t") + 1 : RUNBOOK_COMMANDS.index(
                'pg_dump --format=custom --file=lessons.dump "$DATABASE_URL"'
            )]  # fmt: skip
            list(pool.map(host.run, periodic))
            dump.result()
        host.run('pg_restore --no-owner --dbname="$RESTORE_DATABASE_URL" lessons.dump', cwd=host_root,
                 extra_env={"RESTORE_DATABASE_URL": restore_url})  # fmt: skip
        with psycopg.connect(restore_url) as connection:
            row = connection.execute("SELECT is_superuser FROM auth_user WHERE username = 'admin'").fetchone()
        assert row == (True,)

        phases.append(("periodic jobs, backup, restore", time.monotonic()))
        # Upgrades begin with a drain: SIGTERM (KillSignal) to each worker's main process; it exits
        # cleanly, well within TimeoutStopSec.
        workers = [name for name in units_argv if name.startswith("lessons-worker-")]
        for name in workers:
            (grace,) = unit_field(SYSTEMD / f"{name}.service", "TimeoutStopSec")
            assert (unit_field(SYSTEMD / f"{name}.service", "KillMode"), int(grace)) == (["mixed"], 660)
            host.processes[name].send_signal(signal.SIGTERM)
        for name in workers:
            assert host.processes[name].wait(timeout=60) == 0, host.log(name)
    finally:
        if nginx is not None:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(timeout=10)
        host.stop_all()
        redis_client.flushdb()
        redis_client.close()

    # Every command of the runbook that a host needs no root for was run here.
    expected = set(RUNBOOK_COMMANDS)
    if not shutil.which("systemd-analyze"):  # then the units' ExecStart were still checked against the table
        expected.discard("systemd-analyze verify deploy/systemd/lessons-*.service deploy/systemd/lessons-*.timer")
    assert set(host.ran) == expected, expected ^ set(host.ran)
    phases.append(("drain and stop", time.monotonic()))
    print(
        "runbook phases: "
        + "; ".join(
            f"{label} {end - begin:.1f} s" for (_, begin), (label, end) in zip(phases, phases[1:], strict=False)
        )
    )


def test_every_command_of_the_runbook_is_run_by_a_test_or_named_as_the_hosts() -> None:
    commands = doc_commands()
    assert commands, "no ```sh block found in docs/operations.md"
    unknown = [command for command in commands if command not in RUNBOOK_COMMANDS and command not in HOST_ONLY]
    assert unknown == [], f"commands in docs/operations.md that no test runs: {unknown}"
    # ...and nothing is listed for a command the runbook no longer has.
    assert sorted(set(RUNBOOK_COMMANDS) | set(HOST_ONLY)) == sorted(set(commands))
    # The process table is exactly the shipped units' ExecStart, and the web command is in one place.
    assert sorted(table_commands()) == sorted(shlex.join(argv) for argv in process_units().values())
    web = [unit.name for unit in SYSTEMD.glob("*.service") if "-m config.serve" in unit.read_text()]
    assert web == ["lessons-web.service"]
    assert (ROOT / "docs" / "operations.md").read_text().count("-m config.serve") == 1
