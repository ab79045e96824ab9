"""Ordinary code in the real sandbox: it must just work (stdlib, files, shared paths, plots, languages),
and the API must behave: streaming, cancelling, refusing to run without a sandbox, clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sandbox_snippets"))
from backends import params  # noqa: E402
from outside import Listener, processes_matching, wait_gone  # noqa: E402

from starchat_tui.errors import UsageError  # noqa: E402
from starchat_tui.sandbox import Limits, UnsafeRunRefused, probe_backend, run  # noqa: E402
from starchat_tui.sandbox.launcher import Zygote  # noqa: E402
from starchat_tui.sandbox.workdirs import janitor, sandbox_home  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(120),
]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(params=params())
def backend(request, monkeypatch) -> str:
    monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", request.param)
    assert probe_backend().name == request.param
    return request.param


def _workdir(tmp_path: Path) -> Path:
    # As root the sandbox uid must reach a persistent work dir; pytest's tmp folders are 0700.
    folder = Path("/var/tmp" if os.geteuid() == 0 else tmp_path) / f"starchat-wd-{os.getpid()}-{time.monotonic_ns()}"
    folder.mkdir()
    return folder


def _runs(info=None) -> Path:
    info = info or probe_backend()
    return sandbox_home(info.uid, info.gid, needs_reach=info.name != "bwrap") / "runs"


def test_standard_library_subprocesses_and_exit_codes(backend):
    code = """
import json, sqlite3, subprocess, threading, tempfile, hashlib, os, sys
db = sqlite3.connect(":memory:")
db.execute("create table t (x)")
db.execute("insert into t values (41)")
print(json.dumps({"sum": db.execute("select x + 1 from t").fetchone()[0]}))
print(subprocess.run(["echo", "from a child"], capture_output=True, text=True).stdout.strip())
with tempfile.NamedTemporaryFile("w", delete=False) as handle:
    handle.write("temp ok")
print(open(handle.name).read(), hashlib.sha256(b"x").hexdigest()[:8])
print(repr(sys.stdin.read()))
sys.stdout.buffer.write(b"bad utf-8: \\xff\\n")
print("warning!", file=sys.stderr)
sys.exit(3)
"""
    result = run(code, "python", timeout=20)
    assert result.stdout == '{"sum": 42}\nfrom a child\ntemp ok 2d711642\n\'\'\nbad utf-8: \ufffd\n', result.stderr
    assert result.stderr == "warning!\n"
    assert result.exit_code == 3 and not result.timed_out and not result.truncated
    assert result.backend == backend and result.stopped is None
    killed = run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", "python")
    assert killed.exit_code == 128 + 9


def test_snippets_run_on_the_apps_own_python(backend):
    """The packages the user installed for starchat-tui are the snippets' too, on every backend: as root
    without bubblewrap the sandbox uid cannot enter /root, so a private mount view shows it the venv."""
    result = run("import sys\nprint(sys.executable)\nprint(sys.prefix)")
    assert result.stdout.splitlines() == [sys.executable, sys.prefix], result.stderr


def test_process_pools_need_a_private_dev_shm(backend):
    """Pools' semaphores live in /dev/shm: bubblewrap gives each run its own, so they work; Landlock has
    only the host's, shared with every process there, so a snippet is kept out of it."""
    before = set(os.listdir("/dev/shm"))
    code = (
        "from concurrent.futures import ProcessPoolExecutor\n"
        "with ProcessPoolExecutor(2) as pool:\n"
        "    print(sum(pool.map(abs, [-1, -2, 3])))"
    )
    result = run(code, timeout=30)
    if backend == "bwrap":
        assert result.stdout == "6\n", result.stderr
    else:
        assert result.exit_code != 0 and "PermissionError" in result.stderr, result.stderr
    assert set(os.listdir("/dev/shm")) - before == set()


def test_shells_and_configured_languages(backend, isolated_home):
    shell = run("echo $((6 * 7)); echo oops >&2; exit 4", "bash")
    assert (shell.stdout, shell.stderr, shell.exit_code, shell.language) == ("42\n", "oops\n", 4, "bash")
    assert run("printf '%s\\n' posix", "sh").stdout == "posix\n"
    perl = shutil.which("perl")
    if perl is None or not perl.startswith("/usr/"):
        pytest.skip("no perl in /usr to configure as an extra language")
    (isolated_home / "config" / "config.toml").write_text('[sandbox.languages]\nperl = ["perl", "-w"]\n')
    result = run('print "from perl\\n";', "perl")
    assert result.stdout == "from perl\n" and result.language == "perl", result.stderr


def test_each_run_gets_a_fresh_work_dir_that_is_cleaned_up(backend):
    janitor.wait()
    before = set(_runs().iterdir()) if _runs().exists() else set()
    first = run("open('left.txt', 'w').write('x'); import os; print(os.getcwd())")
    second = run("import os; print(os.getcwd(), sorted(os.listdir('.')))")
    assert first.stdout.strip() != second.stdout.split()[0]
    assert second.stdout.strip().endswith("[]")
    janitor.wait()
    assert not first.workdir.exists(), "a fresh work dir without images is removed after the run"
    assert set(_runs().iterdir()) - before == set(), "nothing of a run without images stays behind"


def test_a_given_work_dir_persists_between_runs(backend, tmp_path):
    workdir = _workdir(tmp_path)
    try:
        run("open('data.txt', 'w').write('kept')\nopen('helper.py', 'w').write('VALUE = 7')", workdir=workdir)
        assert (workdir / "data.txt").read_text() == "kept"  # checked from outside
        result = run("import helper\nprint(open('data.txt').read(), helper.VALUE)", workdir=workdir)
        assert result.stdout == "kept 7\n", result.stderr
        assert result.workdir == workdir.resolve()
    finally:
        shutil.rmtree(workdir)


def test_shared_paths_are_visible_read_only(backend, tmp_path):
    shared = Path("/var/tmp" if os.geteuid() == 0 else tmp_path) / f"starchat-share-{os.getpid()}"
    shared.mkdir()
    try:
        (shared / "input.csv").write_text("a,b\n1,2\n")
        os.chmod(shared / "input.csv", 0o644)
        code = f"""
print(open({str(shared / 'input.csv')!r}).read().splitlines()[1])
try:
    open({str(shared / 'input.csv')!r}, 'a').write('tampered')
except OSError as error:
    print('write refused', error.errno)
"""
        result = run(code, share=[shared])
        assert result.stdout.startswith("1,2\nwrite refused"), result.stderr
        assert (shared / "input.csv").read_text() == "a,b\n1,2\n"
        unshared = run(f"print(open({str(shared / 'input.csv')!r}).read())")
        assert unshared.exit_code != 0 and "1,2" not in unshared.stdout
    finally:
        shutil.rmtree(shared)


def test_plots_are_captured_as_png_files(backend):
    pytest.importorskip("matplotlib")
    code = """
import matplotlib.pyplot as plt
plt.bar(["python", "rust"], [3, 2])
plt.show()
plt.figure()
plt.scatter([1, 2, 3], [3, 1, 2])
plt.savefig("scatter.png")
plt.figure()
plt.plot([1, 4, 9])
open("notes.txt", "w").write("not an image")
"""
    result = run(code, timeout=60)
    assert result.exit_code == 0, result.stderr
    assert [image.name for image in result.images] == ["plot-1.png", "scatter.png", "plot-2.png"]
    janitor.wait()
    for image in result.images:
        assert image.read_bytes().startswith(PNG) and image.stat().st_size > 2000
    assert not (result.workdir / "notes.txt").exists(), "only the images of a fresh work dir are kept"
    assert sorted(path.name for path in result.workdir.iterdir()) == ["plot-1.png", "plot-2.png", "scatter.png"]


def test_plots_in_a_persistent_work_dir_do_not_overwrite(backend, tmp_path):
    pytest.importorskip("matplotlib")
    workdir = _workdir(tmp_path)
    try:
        code = "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.show()"
        assert [p.name for p in run(code, workdir=workdir, timeout=60).images] == ["plot-1.png"]
        assert [p.name for p in run(code, workdir=workdir, timeout=60).images] == ["plot-2.png"]
        assert run("print(1)", workdir=workdir).images == []
    finally:
        shutil.rmtree(workdir)


def test_output_streams_and_a_run_can_be_cancelled(backend):
    chunks: list[tuple[str, str]] = []
    cancel = threading.Event()

    def on_output(stream: str, text: str) -> None:
        chunks.append((stream, text))
        if "tick 2\n" in "".join(piece for _, piece in chunks):
            cancel.set()

    code = "import time\nfor i in range(100):\n    print('tick', i, flush=True)\n    time.sleep(0.05)"
    started = time.monotonic()
    result = run(code, timeout=30, on_output=on_output, cancel=cancel)
    assert result.stopped == "cancelled"
    assert time.monotonic() - started < 5
    assert {stream for stream, _ in chunks} == {"stdout"}
    assert "".join(piece for _, piece in chunks).startswith("tick 0\ntick 1\ntick 2\n")
    assert "tick 99" not in result.stdout
    assert wait_gone(str(_runs())) == []


def test_no_safe_sandbox_means_no_run_unless_confirmed(monkeypatch, tmp_path):
    monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", "none")
    info = probe_backend()
    assert (info.name, info.safe, info.label) == ("none", False, "NONE")
    workdir = _workdir(tmp_path)
    try:
        code = "open('ran', 'w').write('ran')"
        with pytest.raises(UnsafeRunRefused, match="turned off"):
            run(code, workdir=workdir)
        assert not (workdir / "ran").exists()
        result = run(code, workdir=workdir, allow_unsafe=True)
        assert result.backend == "none" and result.exit_code == 0, result.stderr
        assert (workdir / "ran").read_text() == "ran"
    finally:
        shutil.rmtree(workdir)


def test_a_pinned_backend_that_does_not_work_is_reported_not_replaced(monkeypatch):
    monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", "bwrap")
    monkeypatch.delenv("STARCHAT_TUI_BWRAP", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    probe_backend.cache_clear()
    try:
        info = probe_backend()
        assert info.name == "none" and not info.safe
        assert "bwrap was asked for" in info.reason and "apt install bubblewrap" in info.reason
        with pytest.raises(UnsafeRunRefused, match="apt install bubblewrap"):
            run("print(1)")
    finally:
        probe_backend.cache_clear()


def test_bad_input_is_a_usage_error(backend, isolated_home, tmp_path, monkeypatch):
    with pytest.raises(UsageError, match="unknown language 'cobol'"):
        run("x", "cobol")
    with pytest.raises(UsageError, match="timeout"):
        run("print(1)", timeout=0)
    with pytest.raises(UsageError, match="no such folder"):
        run("print(1)", workdir=tmp_path / "missing")
    with pytest.raises(UsageError, match="shared path"):
        run("print(1)", share=[tmp_path / "missing"])
    with pytest.raises(UsageError, match="memory"):
        Limits(memory=0)
    monkeypatch.delenv("STARCHAT_TUI_SANDBOX_BACKEND")
    (isolated_home / "config" / "config.toml").write_text('[sandbox]\nbackend = "docker"\n')
    with pytest.raises(UsageError, match="'docker' is not one of auto, bwrap, landlock, none"):
        run("print(1)")
    (isolated_home / "config" / "config.toml").write_text('[sandbox]\nmemory_mb = "lots"\n')
    with pytest.raises(UsageError, match="memory_mb"):
        run("print(1)")


def test_limits_come_from_config(backend, isolated_home):
    assert Limits.from_config({"memory_mb": 512, "output_kb": 64, "cpu_seconds": 3}) == Limits(
        memory=512 * 1024 * 1024, output=64 * 1024, cpu_seconds=3
    )
    (isolated_home / "config" / "config.toml").write_text("[sandbox]\noutput_kb = 1\n")
    result = run("print('y' * 5000)")
    assert result.truncated and len(result.stdout) == 1024
    assert result.stopped == "output passed 1 KiB; the run was stopped"


def test_file_size_and_disk_use_are_limited(backend, isolated_home, tmp_path):
    (isolated_home / "config" / "config.toml").write_text("[sandbox]\nfile_size_mb = 8\ndisk_mb = 24\n")
    workdir = _workdir(tmp_path)
    try:
        big = run("open('big.bin', 'wb').write(b'0' * (16 * 1024 * 1024))", workdir=workdir)
        assert "File too large" in big.stderr and big.exit_code == 1, big.stderr  # Python turns SIGXFSZ into EFBIG
        assert (workdir / "big.bin").stat().st_size <= 8 * 1024 * 1024
        shell = run("head -c 16777216 /dev/zero > big.bin", "bash", workdir=workdir)
        assert shell.exit_code == 128 + 25, shell.stderr  # SIGXFSZ kills an ordinary program
        (workdir / "big.bin").unlink()
        (workdir / "old.bin").write_bytes(b"1" * (20 * 1024 * 1024))  # already there: does not count
        code = (
            "import time\n"
            "for i in range(40):\n"
            "    open(f'part{i}.bin', 'wb').write(b'0' * (4 * 1024 * 1024))\n"
            "    time.sleep(0.02)"
        )
        many = run(code, workdir=workdir, timeout=30)
        assert many.stopped == "wrote more than 24 MiB to disk; the run was stopped", many
        written = sum(path.stat().st_size for path in workdir.glob("part*.bin"))
        assert 24 * 1024 * 1024 <= written < 60 * 1024 * 1024
    finally:
        shutil.rmtree(workdir)


def test_the_seccomp_filter_blocks_kernel_attack_surface(backend):
    code = r"""
import ctypes, errno, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def attempt(name, call):
    ctypes.set_errno(0)
    result = call()
    print(name, "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()])
attempt("unshare-user", lambda: libc.unshare(0x10000000))
attempt("ptrace", lambda: libc.ptrace(0, 0, 0, 0))
attempt("io_uring_setup", lambda: libc.syscall(425, 1, None))
attempt("clone3", lambda: libc.syscall(435, None, 0))
attempt("personality-query", lambda: libc.personality(0xffffffff))
attempt("personality-no-aslr", lambda: libc.personality(0x0040000))
for family in ("AF_INET", "AF_INET6", "AF_NETLINK", "AF_UNIX"):
    try:
        socket.socket(getattr(socket, family), socket.SOCK_DGRAM).close()
        print(family, "ok")
    except OSError as error:
        print(family, errno.errorcode[error.errno])
"""
    result = run(code)
    assert result.exit_code == 0, result.stderr
    verdicts = dict(line.split() for line in result.stdout.splitlines())
    assert verdicts == {
        "unshare-user": "EPERM", "ptrace": "EPERM", "io_uring_setup": "EPERM", "clone3": "ENOSYS",
        "personality-query": "ok", "personality-no-aslr": "EPERM",
        "AF_INET": "EAFNOSUPPORT", "AF_INET6": "EAFNOSUPPORT", "AF_NETLINK": "EAFNOSUPPORT", "AF_UNIX": "ok",
    }


def test_network_is_there_only_when_asked_for(backend):
    listener = Listener()
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {listener.tcp_port}), timeout=3).sendall(b'hello')"
        assert run(code).exit_code != 0
        result = run(code, network=True)
        assert result.exit_code == 0, result.stderr
        deadline = time.monotonic() + 3
        while b"hello" not in listener.received and time.monotonic() < deadline:
            time.sleep(0.02)
        assert b"hello" in listener.received
    finally:
        listener.close()


def test_orphans_are_reparented_inside_the_run(backend):
    """An orphan's new parent must belong to the run: the sandbox's own init in bubblewrap's pid namespace
    (pid 1 there), or, without a pid namespace (Landlock), our supervisor."""
    parents: list[str] = []
    seen = []

    def on_output(stream: str, text: str) -> None:
        seen.append(text)
        line = "".join(seen)
        if line.startswith("parent") and line.endswith("\n") and not parents:
            pid = int(line.split()[1])  # read while the orphan, and so its new parent, is alive
            parents.append("pid 1 of the sandbox" if backend == "bwrap" and pid == 1 else
                           Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace"))

    code = """
import os, time
if os.fork() == 0:
    if os.fork() == 0:
        time.sleep(0.3)
        print("parent", os.getppid(), flush=True)
        time.sleep(0.5)
    os._exit(0)
os.wait()
time.sleep(1)
"""
    result = run(code, on_output=on_output)
    assert result.exit_code == 0, result.stderr
    expected = "pid 1 of the sandbox" if backend == "bwrap" else "supervisor.py"
    assert parents and expected in parents[0], parents


def test_the_zygote_leaves_no_zombies(backend):
    for _ in range(5):
        assert run("print(1)").stdout == "1\n"
    zygote = Zygote._current
    assert zygote is not None and zygote.process.poll() is None
    zombies = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = Path(f"/proc/{name}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == zygote.process.pid and fields[0] == b"Z":
                zombies.append(name)
    assert zombies == []


def test_the_app_keeps_working_when_its_zygote_is_killed(backend):
    assert run("print(1)").stdout == "1\n"
    old = Zygote._current.process
    old.kill()
    old.wait()
    assert run("print(2)").stdout == "2\n"
    assert Zygote._current.process.pid != old.pid


def test_importing_and_running_stays_light(tmp_path):
    code = (
        "import sys, starchat_tui.sandbox as sandbox\n"
        "print(sandbox.run('print(2)', allow_unsafe=True).stdout.strip())\n"
        "print(sorted(m for m in ('torch', 'transformers', 'textual') if m in sys.modules))"
    )
    env = dict(os.environ)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.stdout.splitlines() == ["2", "[]"], done.stderr


def test_results_serialise_to_json(backend):
    result = run("print('é')")
    data = json.loads(json.dumps(result.as_dict()))
    assert data["stdout"] == "é\n" and data["backend"] == backend and data["images"] == []
    assert processes_matching(str(_runs())) == []
