"""``starchat-tui run`` and ``starchat-tui doctor`` as a user runs them, in real subprocesses."""

from __future__ import annotations

import json
import os
import pty
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sandbox_snippets"))
from backends import params  # noqa: E402
from outside import processes_matching  # noqa: E402

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(120),
]


def starchat(starchat_cmd, cli_env, *args: str, stdin: bytes | None = None, backend: str | None = None, **kwargs):
    env = dict(cli_env)
    if backend:
        env["STARCHAT_TUI_SANDBOX_BACKEND"] = backend
    return subprocess.run(
        [*starchat_cmd, *args], input=stdin, capture_output=True, env=env, timeout=90,
        stdin=None if stdin is not None else subprocess.DEVNULL, **kwargs,
    )


def test_run_prints_output_inert_and_exits_with_the_snippets_code(starchat_cmd, cli_env, tmp_path):
    snippet = tmp_path / "snippet.py"
    snippet.write_text("import sys\nprint('red \\x1b[31mtext')\nprint('to stderr', file=sys.stderr)\nsys.exit(3)\n")
    done = starchat(starchat_cmd, cli_env, "run", str(snippet))
    assert done.returncode == 3, done.stderr
    assert done.stdout.decode() == "red ␛[31mtext\n"
    assert done.stderr.decode() == "to stderr\n"


def test_run_reads_stdin_and_picks_the_language_from_the_file_name(starchat_cmd, cli_env, tmp_path):
    done = starchat(starchat_cmd, cli_env, "run", "-", stdin=b"import sys\nprint(6 * 7, repr(sys.stdin.read()))\n")
    assert (done.returncode, done.stdout) == (0, b"42 ''\n"), done.stderr  # the snippet's stdin is /dev/null
    script = tmp_path / "job.sh"
    script.write_text("echo \"shell $((1 + 1))\"\n")
    done = starchat(starchat_cmd, cli_env, "run", str(script))
    assert (done.returncode, done.stdout) == (0, b"shell 2\n"), done.stderr
    done = starchat(starchat_cmd, cli_env, "run", "--lang", "sh", "-", stdin=b"echo posix\n")
    assert done.stdout == b"posix\n", done.stderr


def test_run_times_out_with_124(starchat_cmd, cli_env):
    started = time.monotonic()
    done = starchat(starchat_cmd, cli_env, "run", "--timeout", "1", "-", stdin=b"while True: pass\n")
    assert done.returncode == 124
    assert "timed out after 1 s" in done.stderr.decode()
    assert time.monotonic() - started < 15


@pytest.mark.parametrize("backend", params())
def test_run_lists_the_plots_it_captured(starchat_cmd, cli_env, backend):
    pytest.importorskip("matplotlib")
    code = b"import matplotlib.pyplot as plt\nplt.bar(['a', 'b'], [1, 2])\nplt.show()\n"
    done = starchat(starchat_cmd, cli_env, "run", "--timeout", "60", "-", stdin=code, backend=backend)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.decode().splitlines() if line.startswith("starchat-tui: image: ")]
    assert len(lines) == 1, done.stderr
    image = Path(lines[0].split("image: ", 1)[1])
    assert image.name == "plot-1.png" and image.read_bytes().startswith(b"\x89PNG")


def test_run_json_describes_the_run(starchat_cmd, cli_env):
    done = starchat(starchat_cmd, cli_env, "run", "--json", "-", stdin=b"print('hi')\nraise SystemExit(5)\n")
    data = json.loads(done.stdout)
    assert done.returncode == 5
    assert data["stdout"] == "hi\n" and data["exit_code"] == 5 and data["timed_out"] is False
    assert data["sandbox"].endswith("+seccomp") and data["backend"] in ("bwrap", "landlock")


def test_without_a_sandbox_run_refuses_unless_told(starchat_cmd, cli_env, tmp_path):
    workdir = Path("/var/tmp" if os.geteuid() == 0 else tmp_path) / f"starchat-cli-{os.getpid()}"
    workdir.mkdir()
    try:
        code = b"open('ran', 'w').write('yes')\n"
        done = starchat(starchat_cmd, cli_env, "run", "--workdir", str(workdir), "-", stdin=code, backend="none")
        assert done.returncode == 2
        stderr = done.stderr.decode()
        assert "NO SANDBOX" in stderr and "--unsafe" in stderr
        assert not (workdir / "ran").exists()
        done = starchat(starchat_cmd, cli_env, "run", "--unsafe", "--workdir", str(workdir), "-", stdin=code, backend="none")
        assert done.returncode == 0, done.stderr
        assert "NO SANDBOX" in done.stderr.decode(), "the warning is shown on every unsafe run"
        assert (workdir / "ran").read_text() == "yes"
    finally:
        shutil.rmtree(workdir)


def test_the_no_sandbox_warning_is_red_on_a_terminal(starchat_cmd, cli_env, tmp_path):
    snippet = tmp_path / "s.py"
    snippet.write_text("print(1)\n")
    main, secondary = pty.openpty()
    try:
        env = dict(cli_env, STARCHAT_TUI_SANDBOX_BACKEND="none")
        env.pop("NO_COLOR", None)
        done = subprocess.run(
            [*starchat_cmd, "run", str(snippet)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=secondary, env=env, timeout=60,
        )
        os.close(secondary)
        secondary = -1
        written = b""
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                break
            if not chunk:
                break
            written += chunk
    finally:
        os.close(main)
        if secondary >= 0:
            os.close(secondary)
    assert done.returncode == 2
    assert b"\x1b[1;31mstarchat-tui: NO SANDBOX" in written


@pytest.mark.parametrize(
    "args, stdin, message",
    [
        (["run", "--lang", "cobol", "-"], b"x", "unknown language 'cobol'"),
        (["run", "/nonexistent/snippet.py"], None, "no such file"),
        (["run", "--timeout", "0", "-"], b"print(1)", "timeout must be a positive number"),
        (["run", "-"], b"\xff\xfe\x00bad", "not UTF-8 text"),
        (["run", "--workdir", "/nonexistent/folder", "-"], b"print(1)", "no such folder"),
    ],
)
def test_run_usage_errors_exit_2_with_one_line(starchat_cmd, cli_env, args, stdin, message):
    done = starchat(starchat_cmd, cli_env, *args, stdin=stdin)
    stderr = done.stderr.decode()
    assert done.returncode == 2, stderr
    assert message in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1, stderr


@pytest.mark.parametrize("backend", params())
def test_killing_the_app_mid_run_kills_the_snippet(starchat_cmd, cli_env, isolated_home, backend):
    """The supervisor outlives the app only long enough to sweep: nothing of the run survives it."""
    code = (
        b"import os, time\n"
        b"for _ in range(5):\n"
        b"    if os.fork() == 0:\n"
        b"        os.setsid()\n"
        b"        time.sleep(60)\n"
        b"        os._exit(0)\n"
        b"print('ready', flush=True)\n"
        b"time.sleep(60)\n"
    )
    env = dict(cli_env, STARCHAT_TUI_SANDBOX_BACKEND=backend)
    pipe = subprocess.PIPE
    app = subprocess.Popen([*starchat_cmd, "run", "--timeout", "60", "-"], stdin=pipe, stdout=pipe, stderr=pipe, env=env)
    try:
        app.stdin.write(code)
        app.stdin.close()
        assert app.stdout.readline() == b"ready\n"
        marker = "/runs/run-"
        mine = [pid for pid in processes_matching(marker) if _under(pid, isolated_home, backend)]
        commands = {pid: _cmdline(pid) for pid in mine}
        assert len(mine) >= 6, "the snippet and its five children must be running"
        os.kill(app.pid, signal.SIGKILL)
        app.wait()
        deadline = time.monotonic() + 5
        alive = [pid for pid in mine if _alive(pid)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in mine if _alive(pid)]
        assert alive == [], "processes of the run outlived the app"
        # The killed app could not clean up its run folder; the next run does.
        runs = {Path(part).parent for parts in commands.values() for part in parts if part.endswith("/snippet.py")}
        assert runs and all(folder.name.startswith(f"run-{app.pid}-") for folder in runs)
        done = starchat(starchat_cmd, cli_env, "run", "-", stdin=b"print(1)", backend=backend)
        assert done.stdout == b"1\n", done.stderr
        assert not [folder for folder in runs if folder.exists()]
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


@pytest.mark.parametrize("backend", params())
def test_ctrl_c_stops_the_run_and_exits_130(starchat_cmd, cli_env, isolated_home, backend):
    code = b"import os, time\nif os.fork() == 0:\n    time.sleep(60)\nprint('ready', flush=True)\ntime.sleep(60)\n"
    env = dict(cli_env, STARCHAT_TUI_SANDBOX_BACKEND=backend)
    pipe = subprocess.PIPE
    app = subprocess.Popen([*starchat_cmd, "run", "--timeout", "60", "-"], stdin=pipe, stdout=pipe, stderr=pipe, env=env)
    try:
        app.stdin.write(code)
        app.stdin.close()
        # "ready" comes from inside the run, which then sleeps for a minute: the signal lands mid-run.
        assert app.stdout.readline() == b"ready\n"
        mine = [pid for pid in processes_matching("/runs/run-") if _under(pid, isolated_home, backend)]
        assert len(mine) >= 2, "the snippet and its child must be running"
        app.send_signal(signal.SIGINT)
        # Bounded by the app's own grace periods (supervisor sweep 5 s, helper shutdown 2 s), with room
        # for a loaded machine; an unloaded one takes a fraction of a second.
        assert app.wait(timeout=30) == 130
        assert app.stderr.read().decode().strip() == "starchat-tui: interrupted"
        deadline = time.monotonic() + 5
        while [pid for pid in mine if _alive(pid)] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [pid for pid in mine if _alive(pid)] == [], "processes of the run outlived Ctrl+C"
    finally:
        if app.poll() is None:
            app.kill()
            app.wait()


def _under(pid: int, home: Path, backend: str) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    # Landlock runs as root fall back to /var/tmp; both places are this test's only runs.
    return str(home) in cmdline or (backend == "landlock" and "/var/tmp/starchat-tui-sandbox-" in cmdline)


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


def test_doctor_names_the_backend_and_why(starchat_cmd, cli_env):
    done = starchat(starchat_cmd, cli_env, "doctor", "--no-device")
    text = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    first = text.splitlines()[0]
    assert first.startswith("sandbox") and "(safe)" in first and "+seccomp" in first
    assert "  why " in text and "  tried " in text and "  runs as " in text
    assert "device" not in text

    done = starchat(starchat_cmd, cli_env, "doctor", "--no-device", "--json", backend="none")
    data = json.loads(done.stdout)
    assert data["sandbox"]["backend"] == "none" and data["sandbox"]["safe"] is False
    assert "turned off" in data["sandbox"]["reason"]


def test_doctor_without_device_check_never_imports_torch(cli_env):
    code = "import sys\nfrom starchat_tui.cli import main\nmain(['doctor', '--no-device'])\nprint('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=cli_env, timeout=60)
    assert done.stdout.strip().endswith("False"), done.stderr


@pytest.mark.slow
def test_doctor_reports_the_device(starchat_cmd, cli_env):
    done = starchat(starchat_cmd, cli_env, "doctor", "--json")
    data = json.loads(done.stdout)
    assert done.returncode == 0, done.stderr
    import torch

    assert data["device"]["torch"] == torch.__version__
    assert data["device"]["device"] == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("backend", params("landlock"))
def test_without_a_mount_view_a_stand_in_python_says_why(starchat_cmd, cli_env, backend):
    """Root without CAP_SYS_ADMIN (as in many containers) cannot give runs a private mount view. A python
    the sandbox uid cannot reach is then replaced by the system one, and a missing module says why."""
    if os.geteuid() != 0:
        pytest.skip("snippets run as your own uid when you are not root: they always reach your python")
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is needed to drop CAP_SYS_ADMIN")
    pytest.importorskip("matplotlib")
    without_sys_admin = [setpriv, "--bounding-set=-sys_admin", "--inh-caps=-sys_admin", "--"]
    command = [*without_sys_admin, *starchat_cmd]
    done = starchat(command, cli_env, "run", "-", stdin=b"import matplotlib\nprint('plots ok')\n", backend=backend)
    doctor = starchat(command, cli_env, "doctor", "--no-device", "--json", backend=backend)
    report = json.loads(doctor.stdout)["sandbox"]
    from starchat_tui.sandbox.workdirs import executable_by

    if executable_by(sys.executable, 65534, 65534):
        # This interpreter sits where the sandbox uid reaches it: no stand-in, no note.
        assert (done.returncode, done.stdout) == (0, b"plots ok\n"), done.stderr
        assert report["python_note"] is None
        return
    stderr = done.stderr.decode()
    assert done.returncode == 1 and "ModuleNotFoundError" in stderr, stderr
    notes = [line for line in stderr.splitlines() if line.startswith("starchat-tui: ")]
    assert len(notes) == 1, stderr
    assert "stands in for" in notes[0] and "no private mount namespace" in notes[0]
    assert "; install bubblewrap, or install starchat-tui with a Python outside /" in notes[0], notes[0]
    assert report["python"] == "/usr/bin/python3" and "install bubblewrap" in report["python_note"]
