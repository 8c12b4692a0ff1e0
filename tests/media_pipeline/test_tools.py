"""Media tools run on hostile uploads without the worker's secrets, inside limits, without network
(media_pipeline/tools.py; issue 13 finding 7). The "tool" is a stand-in script or the real ffmpeg."""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from pytest_django import Settings

from media_pipeline import tools
from media_pipeline.ffmpeg import input_options
from media_pipeline.tools import ToolFailed, run_tool

SECRET = "postgres://pipeline:hunter2-do-not-leak@db.internal/lessons"

SNOOP = """
import json, os, socket, sys
port = int(sys.argv[1])
try:
    socket.create_connection(("127.0.0.1", port), timeout=3).close()
    connected = "connected"
except OSError as exc:
    connected = type(exc).__name__ + ": " + str(exc)
print(json.dumps({"env": dict(os.environ), "limits": open("/proc/self/limits").read(), "connect": connected}))
"""


@pytest.fixture(autouse=True)
def fresh_isolation_check() -> Iterator[None]:
    tools.network_isolation.cache_clear()
    yield
    tools.network_isolation.cache_clear()


@pytest.fixture
def limits(settings: Settings):
    settings.MEDIA_TOOL_CPU_SECONDS = 77
    settings.MEDIA_TOOL_MAX_MEMORY_BYTES = 3 * 1024**3
    settings.MEDIA_TOOL_MAX_FILE_BYTES = 5 * 1024**2
    settings.MEDIA_TOOL_MAX_OPEN_FILES = 256
    return settings


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.setblocking(False)
    yield server
    server.close()


def _no_connection_arrived(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except BlockingIOError:
        return True
    return False


def _namespaces_work() -> bool:
    check = subprocess.run([sys.executable, "-I", "-S", str(tools.SANDBOX), "--net-check"], capture_output=True)
    return check.returncode == 0


def test_a_tool_sees_only_the_minimal_environment_and_its_limits(
    limits, listener: socket.socket, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", SECRET)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s3-secret-key")
    limits.MEDIA_TOOL_NETWORK_ISOLATION = "off"  # the environment and limits alone; network below

    out = run_tool([sys.executable, "-c", SNOOP, str(listener.getsockname()[1])], timeout=60, work_dir=tmp_path)

    seen = json.loads(out)
    assert seen["env"] == {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C",
        "LC_ALL": "C",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
        "MALLOC_ARENA_MAX": "2",
    }
    assert SECRET not in out and "s3-secret-key" not in out
    rows = {line[:26].strip(): line[26:].split() for line in seen["limits"].splitlines()[1:]}
    assert rows["Max cpu time"][:2] == ["77", "82"]
    assert rows["Max file size"][:2] == [str(5 * 1024**2)] * 2
    assert rows["Max address space"][:2] == [str(3 * 1024**3)] * 2
    assert rows["Max open files"][:2] == ["256", "256"]
    assert rows["Max core file size"][:2] == ["0", "0"]


def test_a_tool_cannot_reach_the_network(settings: Settings, listener: socket.socket, tmp_path: Path) -> None:
    # As root (CI, and the machines we deploy workers on) a network namespace is always granted, so the
    # proof must run. A developer's machine without root may refuse unprivileged user namespaces; the
    # refusal itself is tested below (auto and on), so only there is this test not applicable.
    if os.geteuid() != 0 and not _namespaces_work():
        pytest.skip("as non-root this kernel refuses user namespaces (MEDIA_TOOL_NETWORK_ISOLATION=auto runs without)")
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "on"

    out = run_tool([sys.executable, "-c", SNOOP, str(listener.getsockname()[1])], timeout=60, work_dir=tmp_path)

    assert json.loads(out)["connect"].startswith("OSError: [Errno 101] Network is unreachable")
    assert _no_connection_arrived(listener)
    assert tools.NETWORK_ISOLATED._value.get() == 1


def test_without_isolation_the_same_tool_does_connect(
    settings: Settings, listener: socket.socket, tmp_path: Path
) -> None:
    # The control for the test above: the listener does record a connection when one is made.
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "off"

    out = run_tool([sys.executable, "-c", SNOOP, str(listener.getsockname()[1])], timeout=60, work_dir=tmp_path)

    assert json.loads(out)["connect"] == "connected"
    assert not _no_connection_arrived(listener)
    assert tools.NETWORK_ISOLATED._value.get() == 0


def test_ffmpeg_writing_past_the_file_size_limit_is_stopped_with_the_reason(limits, tmp_path: Path) -> None:
    target = tmp_path / "huge.avi"
    command = [
        django_settings.FFMPEG_BIN, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "60", "-c:v", "rawvideo", str(target),
    ]  # fmt: skip
    with pytest.raises(ToolFailed) as raised:
        run_tool(command, timeout=120, work_dir=tmp_path, label="ffmpeg")

    assert str(raised.value) == (
        f"ffmpeg stopped: it wrote a file larger than {5 * 1024**2} bytes (MEDIA_TOOL_MAX_FILE_BYTES)"
    )
    assert raised.value.limit == "MEDIA_TOOL_MAX_FILE_BYTES"
    assert target.stat().st_size <= 5 * 1024**2


def test_ffmpeg_past_its_cpu_time_is_stopped_with_the_reason(limits, tmp_path: Path) -> None:
    limits.MEDIA_TOOL_CPU_SECONDS = 1
    command = [
        django_settings.FFMPEG_BIN, "-nostdin", "-hide_banner", "-loglevel", "error",
        "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=30", "-t", "3600",
        "-c:v", "libx264", "-preset", "medium", "-f", "null", "-",
    ]  # fmt: skip
    with pytest.raises(ToolFailed) as raised:
        run_tool(command, timeout=300, work_dir=tmp_path, label="ffmpeg")

    assert str(raised.value) == "ffmpeg stopped: it used more than 1 s of CPU time (MEDIA_TOOL_CPU_SECONDS)"
    assert raised.value.limit == "MEDIA_TOOL_CPU_SECONDS"


def test_a_real_probe_of_an_upload_runs_in_the_sandbox(settings: Settings, tmp_path: Path) -> None:
    # ffprobe still reads a real file with the whitelists, minimal environment and limits in place.
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "auto"
    source = tmp_path / "clip.mp4"
    subprocess.run(
        [
            settings.FFMPEG_BIN,
            "-nostdin",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25:duration=1",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            str(source),
        ],  # fmt: skip
        check=True,
        timeout=60,
    )
    from media_pipeline.probe import run_ffprobe

    probe = run_ffprobe(ffprobe=settings.FFPROBE_BIN, path=source)

    assert probe["streams"][0]["codec_name"] == "h264"
    assert probe["streams"][0]["width"] == 320
    assert input_options(threads=1)[:2] == ["-protocol_whitelist", "file"]


def test_a_failing_progress_callback_does_not_leave_the_tool_running(settings: Settings, tmp_path: Path) -> None:
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "off"
    pid_file = tmp_path / "pid"
    script = (
        f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); print('x', flush=True); time.sleep(60)"
    )

    def explode(line: str) -> None:
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        run_tool([sys.executable, "-c", script], timeout=120, work_dir=tmp_path, on_stdout_line=explode)

    assert not Path(f"/proc/{pid_file.read_text()}").exists()


def test_a_sandbox_that_cannot_start_the_tool_is_not_blamed_on_the_upload(settings: Settings, tmp_path: Path) -> None:
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "off"
    with pytest.raises(tools.SandboxFailed, match="cannot run /nonexistent/ffmpeg"):
        run_tool(["/nonexistent/ffmpeg", "-version"], timeout=30, work_dir=tmp_path)


@pytest.fixture
def refusing_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The launcher as on a kernel that refuses new namespaces (EPERM from unshare)."""
    source = tools.SANDBOX.read_text()
    stub = source.replace(
        "def _unshare(flags: int) -> None:\n",
        "def _unshare(flags: int) -> None:\n    raise OSError(1, 'Operation not permitted')\n",
    )
    assert stub != source
    path = tmp_path / "tool_sandbox.py"
    path.write_text(stub)
    monkeypatch.setattr(tools, "SANDBOX", path)


def test_auto_runs_without_a_namespace_the_kernel_refuses_and_says_so_once(
    settings: Settings, refusing_kernel: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "auto"
    with caplog.at_level("WARNING", logger="media_pipeline.tools"):
        for _ in range(3):
            assert run_tool([sys.executable, "-c", "print('ran')"], timeout=30, work_dir=tmp_path) == "ran\n"
    assert [record.getMessage() for record in caplog.records] == [
        "media tools run WITH network access: the kernel refused a network namespace "
        "(sandbox: no network namespace: [Errno 1] Operation not permitted)"
    ]
    assert tools.NETWORK_ISOLATED._value.get() == 0


def test_on_refuses_to_run_a_tool_without_a_namespace(
    settings: Settings, refusing_kernel: None, tmp_path: Path
) -> None:
    settings.MEDIA_TOOL_NETWORK_ISOLATION = "on"
    marker = tmp_path / "ran"
    with pytest.raises(ImproperlyConfigured, match="MEDIA_TOOL_NETWORK_ISOLATION=on, but this machine refuses it"):
        run_tool([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], timeout=30, work_dir=tmp_path)
    assert not marker.exists()


def _as_other_process(code: str, **env: str) -> subprocess.Popen:
    # As root, both processes run as "nobody" (what a worker run as a dedicated user looks like), with
    # Debian's Python: the project's interpreter may sit in a folder only root can enter.
    root = os.geteuid() == 0
    drop = {"user": "nobody", "group": "nogroup", "extra_groups": []} if root else {}
    return subprocess.Popen(
        ["/usr/bin/python3" if root else sys.executable, "-I", "-c", code],
        cwd="/",
        env={"PATH": "/usr/bin:/bin", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **drop,
    )


@pytest.mark.parametrize("protected", [False, True])
def test_a_worker_that_runs_tools_hides_its_environment_from_other_processes_of_its_user(protected: bool) -> None:
    """A tool an upload took over runs as the worker's user: it must not read the worker's secrets
    from /proc/<worker>/environ. The unprotected case shows the test can fail. The worker runs the
    real `tools.worker_unreadable` (its source), without Django."""
    function = inspect.getsource(tools.worker_unreadable.__wrapped__)
    worker_code = (
        "import ctypes, functools, time\n"
        f"PR_SET_DUMPABLE = {tools.PR_SET_DUMPABLE}\n"
        f"{function}\n"
        f"assert worker_unreadable() if {protected} else True\n"
        "print('ready', flush=True)\n"
        "time.sleep(30)\n"
    )
    worker = _as_other_process(worker_code, WORKER_SECRET="s3cret-database-password")
    try:
        assert worker.stdout is not None and worker.stdout.readline().strip() == "ready", worker.stderr
        reader = _as_other_process(
            "try:\n"
            f"    print('read' if b's3cret' in open('/proc/{worker.pid}/environ', 'rb').read() else 'absent')\n"
            "except OSError as exc:\n"
            "    print('denied', type(exc).__name__)\n"
        )
        out, err = reader.communicate(timeout=30)
        assert out.split()[0] == ("denied" if protected else "read"), (out, err)
    finally:
        worker.kill()
        worker.wait(timeout=10)


def test_a_tool_run_nicer_gets_that_lower_cpu_priority_and_reads_its_stdin(tmp_path: Path) -> None:
    """Full-ladder encodes yield the CPU to quick steps (MEDIA_LADDER_NICE); the quick stream reads stdin."""
    script = "import os, sys; print(os.nice(0), len(sys.stdin.buffer.read()))"
    base = int(run_tool([sys.executable, "-c", script], timeout=60, work_dir=tmp_path).split()[0])
    out = run_tool(
        [sys.executable, "-c", script], timeout=60, work_dir=tmp_path, nice=10, stdin_chunks=[b"x" * 70_000] * 3
    )
    assert out.split() == [str(min(19, base + 10)), "210000"]


def test_input_that_breaks_off_stops_the_tool_and_is_the_error_raised(tmp_path: Path) -> None:
    """A source whose download fails half-way must never look, to the tool, like a source that ended."""

    def broken() -> Iterator[bytes]:
        yield b"x" * 1000
        raise OSError("storage went away")

    with pytest.raises(OSError, match="storage went away"):
        run_tool([sys.executable, "-c", "import sys; sys.stdin.buffer.read()"], timeout=60, work_dir=tmp_path,
                 stdin_chunks=broken())  # fmt: skip
