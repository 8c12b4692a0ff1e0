"""The container image the deploy tests run (deploy/container, docs/adr/0024), built once per session
by the `image` fixture (tests/deploy/conftest.py) for tests/deploy/test_image.py and
tests/deploy/test_scaleout.py.

No registry is reachable here, so the official base's name (docker.io/library/debian:bookworm-slim)
is given to a Debian 12 built from Debian's packages with mmdebstrap, slimmed as the official one is
(no documentation, manual pages or translations); an image of that name already present is used as
it is. podman runs with deploy/container/containers.conf (runc, fixed rlimits: crun cannot set them
on this machine). LESSONS_TEST_IMAGE names an image already built (`make image IMAGE=...`) to test
instead of building one; it is left in place.

The build takes about two minutes here, so it does not wait for the first deploy test: as soon as the
session's tests are collected, tests/conftest.py starts it in a thread (start_image_build) and moves
the tests that use the image to the end, and the fixture waits for the build only if it is not done by
then. The session's end stops a build still running (stop_image_build), by its process group.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
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


def _base_image(env: dict[str, str], step: Callable[[list[str], float], None]) -> bool:
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
        step(command, 600)
        partial.rename(tar)
    step(["podman", "import", "--quiet", str(tar), BASE_IMAGE], 300)
    return True


class ImageBuild:
    """`make image` (after the base it needs) in a thread of its own; every command it runs can be
    stopped by its process group."""

    def __init__(self) -> None:
        self.env = podman_env()
        self.name = f"localhost/lessons-image-test:{os.getpid()}"
        self.summary = ""
        self.error: BaseException | None = None
        self._imported = False
        self._removed = False
        self._stopping = False
        self._process: subprocess.Popen[str] | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._build, name="image-build", daemon=True)
        self._thread.start()

    def _step(self, command: list[str], timeout: float) -> str:
        with self._lock:
            if self._stopping:
                raise RuntimeError("the image build was stopped")
            self._process = subprocess.Popen(
                command, env=self.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                start_new_session=True,
            )  # fmt: skip
        try:
            output, _ = self._process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, signal.SIGKILL)
            self._process.wait()
            raise
        code = self._process.returncode
        assert code == 0, f"{' '.join(command)} exited {code}:\n{output[-3000:]}"
        return output

    def _build(self) -> None:
        try:
            started = time.monotonic()
            self._imported = _base_image(self.env, self._step)
            base_seconds = time.monotonic() - started
            started = time.monotonic()
            # Exactly `make image`, handing the build the CAs this machine trusts (as a build secret, see
            # the Makefile): pip and npm in the builder may reach their registries through a proxy only
            # they trust.
            ca_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
            ca = [f"CA_BUNDLE={ca_bundle}"] if ca_bundle.exists() and "CA_BUNDLE" not in os.environ else []
            output = self._step(["make", "--no-print-directory", "image", f"IMAGE={self.name}",
                                 "IMAGE_BUILD_ARGS=--layers=false", *ca], 1800)  # fmt: skip
            size_line = output.strip().splitlines()[-1]
            self.summary = f"image: base {base_seconds:.0f} s, build {time.monotonic() - started:.0f} s; {size_line}"
        except BaseException as err:  # noqa: BLE001 - handed to the test that waits for the image
            self.error = err

    def wait(self) -> None:
        self._thread.join()
        if self.error is not None:
            raise AssertionError(f"the image build failed: {self.error}") from self.error

    def stop(self) -> None:
        """Stop a build still running, then remove what it made (again harmless)."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        self._thread.join(timeout=60)
        self.remove()

    def remove(self) -> None:
        if self._removed:
            return
        self._removed = True
        run(["podman", "rmi", "--force", self.name], self.env, check=False)
        if self._imported:
            run(["podman", "rmi", BASE_IMAGE], self.env, check=False)


_build: ImageBuild | None = None


def start_image_build() -> ImageBuild:
    """The session's image build, started now unless it already was."""
    global _build
    assert shutil.which("podman"), "podman is missing: `make system-deps` installs it"
    if _build is None:
        _build = ImageBuild()
    return _build


def stop_image_build() -> None:
    if _build is not None:
        _build.stop()


def built_image() -> Iterator[Image]:
    """The body of the session's `image` fixture: the build's image (waiting for it if need be), removed
    after the last test that uses it."""
    prefix = f"lessons-image-test-{os.getpid()}"
    if given := os.environ.get("LESSONS_TEST_IMAGE"):
        env = podman_env()
        run(["podman", "image", "exists", given], env)
        yield Image(name=given, env=env, prefix=prefix)
        return
    build = start_image_build()
    started = time.monotonic()
    build.wait()
    print(f"\n{build.summary}; waited {time.monotonic() - started:.0f} s for it")
    try:
        yield Image(name=build.name, env=build.env, prefix=prefix)
    finally:
        build.remove()
