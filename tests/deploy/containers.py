"""The container image the deploy tests run (deploy/container, docs/adr/0024), built once per session
by the `image` fixture (tests/deploy/conftest.py) for tests/deploy/test_image.py and
tests/deploy/test_scaleout.py.

No registry is reachable here, so the official base's name (docker.io/library/debian:bookworm-slim)
is given to a Debian 12 built from Debian's packages with mmdebstrap, slimmed as the official one is
(no documentation, manual pages or translations); an image of that name already present is used as
it is. podman runs with deploy/container/containers.conf (runc, fixed rlimits: crun cannot set them
on this machine). LESSONS_TEST_IMAGE names an image already built (`make image IMAGE=...`) to test
instead of building one; it is left in place.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "docker.io/library/debian:bookworm-slim"
# What the official slim image leaves out, so the size measured here is close to what users get.
SLIM_DPKG_OPTIONS = [
    "path-exclude=/usr/share/man/*",
    "path-exclude=/usr/share/info/*",
    "path-exclude=/usr/share/doc/*",
    "path-include=/usr/share/doc/*/copyright",
    "path-exclude=/usr/share/locale/*",
    "path-include=/usr/share/locale/locale.alias",
]
# minbase brings usrmerge, which pulls in the whole of perl; the official image has usr-is-merged
# (and perl-base) instead.
SLIM_INCLUDE = "usr-is-merged"
NOT_IN_OFFICIAL_SLIM = "usrmerge libfile-find-rule-perl libnumber-compare-perl libtext-glob-perl perl perl-modules-5.36"
NOT_IN_OFFICIAL_SLIM += " libperl5.36 libgdbm-compat4"


@dataclass(frozen=True)
class Image:
    name: str
    env: dict[str, str]  # podman's environment (CONTAINERS_CONF)
    prefix: str  # of the names of this session's containers


def run(
    command: list[str], env: dict[str, str], *, timeout: float = 120, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    if check:
        assert result.returncode == 0, (
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def podman_env() -> dict[str, str]:
    return {**os.environ, "CONTAINERS_CONF": str(ROOT / "deploy" / "container" / "containers.conf")}


def remove_container(name: str, image: Image) -> None:
    run(["podman", "rm", "--force", "--volumes", name], image.env, check=False)


def _base_image(env: dict[str, str]) -> bool:
    """Make BASE_IMAGE exist; True when this session imported it (and so removes it)."""
    if run(["podman", "image", "exists", BASE_IMAGE], env, check=False).returncode == 0:
        return False
    mmdebstrap = shutil.which("mmdebstrap")
    assert mmdebstrap, "mmdebstrap is missing: `make system-deps` installs it"
    var_dir = Path(os.environ.get("VAR_DIR") or ROOT / "var")
    tar = var_dir / "container-base" / "bookworm-slim.tar"  # kept for the rest of the run
    if not tar.exists():
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_name("partial-" + tar.name)  # mmdebstrap picks the format by the .tar suffix
        command = [mmdebstrap, "--variant=minbase", "--quiet", f"--include={SLIM_INCLUDE}"]
        command += [f"--dpkgopt={option}" for option in SLIM_DPKG_OPTIONS]
        command += [f'--customize-hook=chroot "$1" dpkg --purge {NOT_IN_OFFICIAL_SLIM}',
                    '--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin',
                    "bookworm", str(partial)]  # fmt: skip
        run(command, env, timeout=600)
        partial.rename(tar)
    run(["podman", "import", "--quiet", str(tar), BASE_IMAGE], env, timeout=300)
    return True


def built_image() -> Iterator[Image]:
    """The body of the session's `image` fixture: build (exactly `make image`), yield, remove."""
    assert shutil.which("podman"), "podman is missing: `make system-deps` installs it"
    env = podman_env()
    prefix = f"lessons-image-test-{os.getpid()}"
    if given := os.environ.get("LESSONS_TEST_IMAGE"):
        run(["podman", "image", "exists", given], env)
        yield Image(name=given, env=env, prefix=prefix)
        return
    started = time.monotonic()
    imported = _base_image(env)
    base_seconds = time.monotonic() - started
    name = f"localhost/lessons-image-test:{os.getpid()}"
    try:
        started = time.monotonic()
        # Exactly `make image`, handing the build the CAs this machine trusts (as a build secret, see the
        # Makefile): pip and npm in the builder may reach their registries through a proxy only they trust.
        ca_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
        ca = [f"CA_BUNDLE={ca_bundle}"] if ca_bundle.exists() and "CA_BUNDLE" not in os.environ else []
        result = run(["make", "--no-print-directory", "image", f"IMAGE={name}", "IMAGE_BUILD_ARGS=--layers=false",
                      *ca], env, timeout=1800)  # fmt: skip
        build_seconds, size_line = time.monotonic() - started, result.stdout.strip().splitlines()[-1]
        print(f"\nimage: base {base_seconds:.0f} s, build {build_seconds:.0f} s; {size_line}")
        yield Image(name=name, env=env, prefix=prefix)
    finally:
        run(["podman", "rmi", "--force", name], env, check=False)
        if imported:
            run(["podman", "rmi", BASE_IMAGE], env, check=False)
