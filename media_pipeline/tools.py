"""The one way the pipeline starts a media tool (ffmpeg, ffprobe, Shaka Packager) on untrusted input.

Every run gets:

- a minimal environment (PATH, LANG/LC_ALL=C, HOME and TMPDIR in the job's work folder): the worker's
  own (DATABASE_URL, S3 keys, SECRET_KEY...) never reaches a parser of hostile files;
- resource limits (CPU seconds, address space, largest file written, open files; no core files),
  MEDIA_TOOL_* settings;
- no network when the kernel allows it (a new network namespace; MEDIA_TOOL_NETWORK_ISOLATION);
- a wall-clock timeout, and its stdout line by line to a callback (ffmpeg's ``-progress``) or whole.

The limits and the namespace are set by media_pipeline/tool_sandbox.py, which execs the tool: the
worker is threaded, and ``preexec_fn`` is not safe there. See docs/security.md (finding 7).
"""

from __future__ import annotations

import ctypes
import functools
import io
import logging
import os
import queue
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from prometheus_client import Gauge

logger = logging.getLogger(__name__)

SANDBOX = Path(__file__).with_name("tool_sandbox.py")
SANDBOX_FAILED = 125  # tool_sandbox.SANDBOX_FAILED (that module is run by path, never imported)
TOOL_PATH = "/usr/local/bin:/usr/bin:/bin"

NETWORK_ISOLATED = Gauge(
    "media_tool_network_isolated",
    "1 when media tools run in their own network namespace, 0 when the kernel refused and they run without",
)


class ToolFailed(Exception):
    """The tool ran and failed (error, timeout, a resource limit): the message says why, for an educator."""

    def __init__(self, message: str, stderr: str = "", *, timed_out: bool = False, limit: str = "") -> None:
        super().__init__(message)
        self.stderr = stderr
        self.timed_out = timed_out
        self.limit = limit  # the setting whose limit stopped the tool, if one did


class SandboxFailed(RuntimeError):
    """The sandbox around the tool could not be set up: a fault of this machine, never of the upload."""


_GLOG_PREFIX = re.compile(r"^[EWIF]\d{4} [\d:.]+\s+\d+ \S+\] ")


def last_error_line(stderr: str) -> str:
    """The last line a tool printed, without log prefixes, short enough to show an educator."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    return _GLOG_PREFIX.sub("", lines[-1] if lines else "unknown error")[:300]


@dataclass(frozen=True)
class ToolLimits:
    cpu_seconds: int
    address_space_bytes: int
    file_size_bytes: int
    open_files: int

    @classmethod
    def from_settings(cls) -> ToolLimits:
        return cls(
            cpu_seconds=settings.MEDIA_TOOL_CPU_SECONDS,
            address_space_bytes=settings.MEDIA_TOOL_MAX_MEMORY_BYTES,
            file_size_bytes=settings.MEDIA_TOOL_MAX_FILE_BYTES,
            open_files=settings.MEDIA_TOOL_MAX_OPEN_FILES,
        )


def tool_environment(*, work_dir: Path) -> dict[str, str]:
    """Everything a media tool is told about its surroundings."""
    return {
        "PATH": TOOL_PATH,
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": str(work_dir),
        "TMPDIR": str(work_dir),
        # glibc reserves 64 MiB of address space per malloc arena, up to 8 per core: on a big machine
        # that alone would meet RLIMIT_AS. Two arenas cost a threaded encoder nothing measurable.
        "MALLOC_ARENA_MAX": "2",
    }


PR_SET_DUMPABLE, PR_GET_DUMPABLE = 4, 3


@functools.cache
def network_isolation() -> bool:
    """Whether tools run without network: MEDIA_TOOL_NETWORK_ISOLATION, tried once per process.

    ``auto`` uses a network namespace when the kernel grants one and otherwise logs (once) and sets the
    media_tool_network_isolated gauge to 0; ``on`` refuses to run any tool without one.
    """
    mode = settings.MEDIA_TOOL_NETWORK_ISOLATION
    if mode == "off":
        NETWORK_ISOLATED.set(0)
        return False
    check = subprocess.run(
        [sys.executable, "-I", "-S", str(SANDBOX), "--net-check"],
        env=tool_environment(work_dir=Path(tempfile.gettempdir())),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if check.returncode == 0:
        NETWORK_ISOLATED.set(1)
        return True
    reason = last_error_line(check.stderr)
    if mode == "on":
        raise ImproperlyConfigured(f"MEDIA_TOOL_NETWORK_ISOLATION=on, but this machine refuses it: {reason}")
    NETWORK_ISOLATED.set(0)
    logger.warning("media tools run WITH network access: the kernel refused a network namespace (%s)", reason)
    return False


@functools.cache
def worker_unreadable() -> bool:
    """Make this process non-dumpable (prctl PR_SET_DUMPABLE 0), once, before its first tool runs.

    A tool that an upload took over runs as the worker's user; without this it could read the worker's
    secrets from /proc/<worker>/environ and /proc/<worker>/mem. The kernel then allows those only to a
    process with CAP_SYS_PTRACE over the worker (root): run workers as a dedicated non-root user."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def sandboxed_command(command: list[str], *, limits: ToolLimits, isolate_network: bool, nice: int = 0) -> list[str]:
    return [
        sys.executable, "-I", "-S", str(SANDBOX),
        "--cpu", str(limits.cpu_seconds), "--as", str(limits.address_space_bytes),
        "--fsize", str(limits.file_size_bytes), "--nofile", str(limits.open_files),
        "--net", "require" if isolate_network else "skip",
        *(["--nice", str(nice)] if nice > 0 else []),
        "--", *command,
    ]  # fmt: skip


def run_tool(
    command: list[str],
    *,
    timeout: float,
    cwd: Path | None = None,
    work_dir: Path | None = None,
    on_stdout_line: Callable[[str], None] | None = None,
    label: str | None = None,
    stdin_chunks: Iterable[bytes] | None = None,
    nice: int = 0,
    every: tuple[float, Callable[[], None]] | None = None,
) -> str:
    """Run a media tool to completion in the sandbox; return its stdout (empty when ``on_stdout_line``
    takes it line by line). Raise ToolFailed on an error, a timeout or a resource limit, with the reason
    (``ToolFailed.stderr`` holds everything it logged); SandboxFailed when the sandbox could not be set up.

    stderr goes to a temporary file, not a pipe: a tool that logs more than a pipe holds (64 KiB) while
    we read its stdout would otherwise block on the write and never finish. A timer kills the tool at
    ``timeout`` even when it has stopped writing altogether. HOME and TMPDIR are ``work_dir`` (default:
    ``cwd``, else MEDIA_WORK_DIR or the system's temporary folder).

    ``stdin_chunks``: bytes written to the tool's standard input by a thread of its own (the tool reads
    ``pipe:0``), then closed. An error while producing them kills the tool and is raised here once it
    has stopped, so a tool never mistakes input that broke off for the end of its input.
    ``nice``: run the tool at that lower CPU priority (full-ladder encodes, MEDIA_LADDER_NICE).
    ``every``: ``(seconds, callback)``: the callback runs in this thread that often while the tool runs
    (whatever the tool prints, or not); an exception from it kills the tool and is raised.
    """
    label = label or Path(command[0]).name
    worker_unreadable()
    limits = ToolLimits.from_settings()
    home = work_dir or cwd or Path(settings.MEDIA_WORK_DIR or tempfile.gettempdir())
    full = sandboxed_command(command, limits=limits, isolate_network=network_isolation(), nice=nice)
    collected: list[str] = []
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as stderr_file:
        with subprocess.Popen(
            full,
            cwd=cwd,
            env=tool_environment(work_dir=home),
            stdin=subprocess.DEVNULL if stdin_chunks is None else subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr_file,
            text=True,
            errors="replace",
        ) as process:
            assert process.stdout is not None
            timed_out = threading.Event()

            def kill() -> None:
                timed_out.set()
                process.kill()

            timer = threading.Timer(timeout, kill)
            timer.start()
            feeder = None if stdin_chunks is None else _feed(process, stdin_chunks)
            try:
                for line in process.stdout if every is None else _lines_and_ticks(process.stdout, every[0]):
                    if line is None:
                        assert every is not None
                        every[1]()
                    elif on_stdout_line is not None:
                        on_stdout_line(line)
                    else:
                        collected.append(line)
                # wait4, not wait: the tool's own CPU time tells a CPU limit from a tool that caught
                # SIGXCPU and exited "normally" (ffmpeg does).
                _, status, usage = os.wait4(process.pid, 0)
                process.returncode = os.waitstatus_to_exitcode(status)
                cpu_used = usage.ru_utime + usage.ru_stime
            except BaseException:
                process.kill()  # the caller's callback failed (or a Shutdown): the tool must not outlive it
                raise
            finally:
                timer.cancel()
                if feeder is not None:
                    feeder.thread.join()
        stderr_file.seek(0)
        stderr = stderr_file.read()
    if feeder is not None and feeder.error is not None:
        raise feeder.error
    if timed_out.is_set():
        raise ToolFailed(f"{label} timed out after {timeout:.0f} s", stderr=stderr, timed_out=True)
    _raise_for(process.returncode, label=label, stderr=stderr, limits=limits, cpu_used=cpu_used)
    return "".join(collected)


def _lines_and_ticks(stdout: IO[str], seconds: float) -> Iterator[str | None]:
    """The tool's stdout lines as they come, with None in between every ``seconds`` (read by a thread)."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        try:
            for line in stdout:
                lines.put(line)
        finally:
            lines.put(None)  # the end

    reader = threading.Thread(target=read, name="tool-stdout", daemon=True)
    reader.start()
    next_tick = time.monotonic() + seconds
    while True:
        try:
            line = lines.get(timeout=max(0.0, next_tick - time.monotonic()))
        except queue.Empty:
            next_tick = time.monotonic() + seconds
            yield None
            continue
        if line is None:
            reader.join()
            return
        yield line


@dataclass
class _Feeder:
    thread: threading.Thread
    error: BaseException | None = None


def _feed(process: subprocess.Popen[str], chunks: Iterable[bytes]) -> _Feeder:
    """Write ``chunks`` to the tool's stdin from a thread; an error kills the tool (see run_tool)."""
    assert process.stdin is not None
    pipe = cast(io.TextIOWrapper, process.stdin).buffer  # bytes, under the text wrapper text=True gives

    def feed() -> None:
        try:
            for chunk in chunks:
                pipe.write(chunk)
        except BrokenPipeError:
            pass  # the tool stopped reading (it exited): its exit status says why
        except BaseException as exc:  # noqa: BLE001 - handed to run_tool's caller
            feeder.error = exc
            process.kill()
        finally:
            try:
                pipe.close()
            except OSError:
                pass

    feeder = _Feeder(thread=threading.Thread(target=feed, name="tool-stdin", daemon=True))
    feeder.thread.start()
    return feeder


def _raise_for(returncode: int, *, label: str, stderr: str, limits: ToolLimits, cpu_used: float) -> None:
    if returncode == 0:
        return
    if returncode == SANDBOX_FAILED and last_error_line(stderr).startswith("sandbox: "):
        raise SandboxFailed(f"{label} could not be started: {last_error_line(stderr)}")
    if returncode == -signal.SIGXCPU or cpu_used >= limits.cpu_seconds:
        raise ToolFailed(
            f"{label} stopped: it used more than {limits.cpu_seconds} s of CPU time (MEDIA_TOOL_CPU_SECONDS)",
            stderr=stderr,
            limit="MEDIA_TOOL_CPU_SECONDS",
        )
    if returncode == -signal.SIGXFSZ:
        raise ToolFailed(
            f"{label} stopped: it wrote a file larger than {limits.file_size_bytes} bytes (MEDIA_TOOL_MAX_FILE_BYTES)",
            stderr=stderr,
            limit="MEDIA_TOOL_MAX_FILE_BYTES",
        )
    if any(sign in last_error_line(stderr) for sign in ("Cannot allocate memory", "bad_alloc", "out of memory")):
        raise ToolFailed(
            f"{label} ran out of memory: {last_error_line(stderr)} (MEDIA_TOOL_MAX_MEMORY_BYTES="
            f"{limits.address_space_bytes})",
            stderr=stderr,
            limit="MEDIA_TOOL_MAX_MEMORY_BYTES",
        )
    if returncode < 0:
        name = signal.Signals(-returncode).name if -returncode in signal.valid_signals() else str(-returncode)
        raise ToolFailed(f"{label} was killed by {name}: {last_error_line(stderr)}", stderr=stderr)
    raise ToolFailed(f"{label} failed: {last_error_line(stderr)}", stderr=stderr)
