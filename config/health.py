"""Liveness and readiness probes for load balancers and Kubernetes."""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import staticfiles_storage
from django.core.files.storage import default_storage
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache

from config.draining import draining

logger = logging.getLogger(__name__)


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _check_broker() -> None:
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    finally:
        client.close()


# The front-end files the pages load: without them (no `npm run build`, no collectstatic) the lesson
# page, the live dashboard and the lesson admin answer 500.
REQUIRED_STATIC = (
    "build/hls.min.js", "build/shaka-player.compiled.js", "build/chart.umd.min.js", "build/tus.min.js",
    "build/md5.umd.min.js", "js/lesson-upload.js", "js/lesson-upload-hasher.js",
    "js/player.js", "js/player-extras.js", "js/lti.js", "css/site.css",
)  # fmt: skip

# Once every migration is applied in this process's database it stays so: checked until then only.
_migrated = False


class NotMigrated(Exception):
    pass


class StaticFilesMissing(Exception):
    pass


def _check_migrations() -> None:
    global _migrated
    if _migrated:
        return
    executor = MigrationExecutor(connection)
    unapplied = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if unapplied:
        raise NotMigrated(f"{len(unapplied)} migrations not applied (manage.py migrate)")
    _migrated = True


def _check_static() -> None:
    if hasattr(staticfiles_storage, "stored_name"):  # a manifest: collectstatic must have put them there
        missing = []
        for name in REQUIRED_STATIC:
            try:
                staticfiles_storage.stored_name(name)
            except ValueError:
                missing.append(name)
    else:
        missing = [name for name in REQUIRED_STATIC if not finders.find(name)]
    if missing:
        raise StaticFilesMissing(f"missing: {', '.join(missing)} (make frontend, manage.py collectstatic)")


def _check_storage() -> None:
    # A listing of the root touches the bucket (S3) or the folder (local) without writing.
    default_storage.exists("readyz-probe")


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    if draining():  # told to stop (config/serve.py): still serving, but send new requests elsewhere
        return JsonResponse({"status": "draining"}, status=503)
    checks = {
        "database": _check_database,
        "migrations": _check_migrations,
        "broker": _check_broker,
        "storage": _check_storage,
        "static": _check_static,
    }
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            logger.warning("readiness check %s failed: %s", name, exc)  # the reason is for the operator
            results[name] = f"error: {type(exc).__name__}"
    ready = all(value == "ok" for value in results.values())
    return JsonResponse({"status": "ok" if ready else "unavailable", "checks": results}, status=200 if ready else 503)
