"""Launcher that media_pipeline.tools puts in front of every media tool: set resource limits, leave
the network (a new network namespace), then exec the tool. Standard library only; run by path with
``python -I -S``, so it starts in a few milliseconds and imports nothing of the project.

    python -I -S tool_sandbox.py --cpu S --as B --fsize B --nofile N --net require|skip [--nice N] -- TOOL ARGS...
    python -I -S tool_sandbox.py --net-check      exit 0 when a network namespace can be made here

It runs in the child between fork and exec of the tool, which ``preexec_fn`` cannot do safely in a
threaded worker (Python's documentation: it may deadlock). Exit status 125 means the sandbox itself
could not be set up; the reason is the last line on stderr.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import resource
import signal
import sys

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SANDBOX_FAILED = 125


def _unshare(flags: int) -> None:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.unshare(flags) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno))


def leave_network() -> None:
    """A new, empty network namespace (only a loopback that is down): no address is reachable.

    As root (CAP_SYS_ADMIN) that is enough. Otherwise a new user namespace comes first, mapping our own
    user and group to themselves, so files the tool writes stay ours."""
    if os.geteuid() == 0:
        _unshare(CLONE_NEWNET)
        return
    uid, gid = os.geteuid(), os.getegid()
    _unshare(CLONE_NEWUSER | CLONE_NEWNET)
    with open("/proc/self/setgroups", "w") as handle:
        handle.write("deny")
    with open("/proc/self/uid_map", "w") as handle:
        handle.write(f"{uid} {uid} 1")
    with open("/proc/self/gid_map", "w") as handle:
        handle.write(f"{gid} {gid} 1")


def set_limits(*, cpu: int, address_space: int, file_size: int, open_files: int) -> None:
    # The CPU hard limit (SIGKILL) a little above the soft one (SIGXCPU): the tool dies either way.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size, file_size))
    resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))
    # No core files: one would hold decoded pictures and whatever else the tool had in memory.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _fail(message: str) -> None:
    sys.stderr.write(f"sandbox: {message}\n")
    sys.stderr.flush()
    os._exit(SANDBOX_FAILED)


def main(argv: list[str]) -> None:
    if argv == ["--net-check"]:
        try:
            leave_network()
        except OSError as exc:
            _fail(f"no network namespace: {exc}")
        os._exit(0)
    try:
        split = argv.index("--")
    except ValueError:
        _fail("usage: tool_sandbox.py OPTIONS -- TOOL ARGS...")
    options = dict(zip(argv[:split:2], argv[1:split:2], strict=True))
    command = argv[split + 1 :]
    if not command:
        _fail("no tool given")
    if options.get("--net") == "require":
        try:
            leave_network()
        except OSError as exc:
            _fail(f"no network namespace: {exc}")
    try:
        set_limits(
            cpu=int(options["--cpu"]),
            address_space=int(options["--as"]),
            file_size=int(options["--fsize"]),
            open_files=int(options["--nofile"]),
        )
    except (KeyError, ValueError, OSError) as exc:
        _fail(f"resource limits: {exc!r}")
    if int(options.get("--nice", "0")) > 0:
        os.nice(int(options["--nice"]))  # a lower CPU priority: long work yields to short work
    # Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: the tool
    # gets the defaults back, so writing past RLIMIT_FSIZE stops it (SIGXFSZ) instead of failing quietly.
    for name in ("SIGPIPE", "SIGXFSZ", "SIGXCPU"):
        signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execvp(command[0], command)  # a bare name is looked up on the minimal PATH
    except OSError as exc:
        _fail(f"cannot run {command[0]}: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
