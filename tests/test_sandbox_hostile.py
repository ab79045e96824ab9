"""Hostile snippets against the real sandbox, every verdict checked from outside it.

Two scenarios: the app (this test process, which as root makes snippets run as an unprivileged uid)
calling ``run()``, and an ordinary user the tests create running ``starchat-tui run`` through setpriv;
each on every backend this machine has (bubblewrap, the Landlock fallback), so a machine without
bubblewrap still proves what its fallback contains. Every bomb is bounded, so a broken sandbox fails a
test instead of taking the machine down.
"""

from __future__ import annotations

import json
import os
import pwd
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "sandbox_snippets"))
from backends import params  # noqa: E402
from outside import Listener, Sampler, snippet, wait_gone  # noqa: E402

from starchat_tui.sandbox import probe_backend, run  # noqa: E402
from starchat_tui.sandbox.workdirs import executable_by, janitor  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
MiB = 1024 * 1024
CONFIG = """\
[sandbox]
processes = 64
memory_mb = 1024
tmp_mb = 32
disk_mb = 64
"""
pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the sandbox backends are Linux-only"),
    pytest.mark.timeout(120),
]


# ---------------------------------------------------------------------------------------------------
# The ordinary user the tests create, and a copy of the package that user can import


@pytest.fixture(scope="session")
def test_user():
    if os.geteuid() != 0:
        pytest.skip("creating a test user needs root; as an ordinary user the app scenario already covers it")
    if shutil.which("useradd") is None or shutil.which("setpriv") is None:
        pytest.skip("useradd and setpriv are needed to run the CLI as another user")
    name = f"sbx{os.getpid() % 100000}"
    subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True, capture_output=True)
    entry = pwd.getpwnam(name)
    python = None
    for candidate in (sys.executable, "/usr/bin/python3"):
        if os.path.exists(candidate) and executable_by(candidate, entry.pw_uid, entry.pw_gid):
            check = [candidate, "-c", "import sys, tomllib; assert sys.version_info >= (3, 10)"]
            if subprocess.run(check, capture_output=True).returncode == 0:
                python = candidate
                break
    # The checkout may sit where the user cannot go (/root/...): give the user its own copy.
    package_root = Path(tempfile.mkdtemp(prefix="starchat-test-pkg-", dir="/var/tmp"))
    package_root.chmod(0o755)
    shutil.copytree(REPO / "starchat_tui", package_root / "starchat_tui", ignore=shutil.ignore_patterns("__pycache__"))
    yield {
        "name": name, "uid": entry.pw_uid, "gid": entry.pw_gid, "home": Path(entry.pw_dir),
        "python": python, "pythonpath": str(package_root),
    }
    shutil.rmtree(package_root, ignore_errors=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)


# ---------------------------------------------------------------------------------------------------
# Scenarios


class Scenario:
    """Who runs the app, with which backend; where its secrets are; how it runs a snippet."""

    secret_value: str
    home: Path
    marker: str
    fake_tui: subprocess.Popen

    def run(self, code: str, lang: str = "python", *, timeout: float = 10.0, workdir: Path | None = None) -> dict:
        raise NotImplementedError

    def new_workdir(self) -> Path:
        raise NotImplementedError

    def still_works(self) -> None:
        result = self.run("print('still working')", timeout=10)
        assert result["stdout"] == "still working\n", result


class AppScenario(Scenario):
    """This process is the app: in-process ``run()``, the app's environment holding an API key."""

    def __init__(self, backend, tmp_path, monkeypatch, isolated_home):
        self.backend = backend
        self.secret_value = "sk-" + secrets.token_hex(16)
        monkeypatch.setenv("OPENAI_API_KEY", self.secret_value)
        monkeypatch.setenv("STARCHAT_TUI_SANDBOX_BACKEND", backend)
        (isolated_home / "config" / "config.toml").write_text(CONFIG)
        self.home = Path.home()
        self.tmp_path = tmp_path
        info = probe_backend()
        assert info.name == backend, info
        self.fake_tui = subprocess.Popen(["sleep", "600"], env={"OPENAI_API_KEY": self.secret_value})
        self.app_pids = [os.getpid(), self.fake_tui.pid]
        self.marker = ""  # set by the first run

    def _runs_folder(self) -> Path:
        from starchat_tui.sandbox.workdirs import sandbox_home

        info = probe_backend()
        return sandbox_home(info.uid, info.gid, needs_reach=info.name != "bwrap") / "runs"

    def run(self, code, lang="python", *, timeout=10.0, workdir=None):
        result = run(code, lang, timeout=timeout, workdir=workdir)
        return result.as_dict()

    def new_workdir(self) -> Path:
        folder = Path("/var/tmp" if os.geteuid() == 0 else self.tmp_path) / f"wd-{secrets.token_hex(4)}"
        folder.mkdir()
        return folder


class UserScenario(Scenario):
    """A user the tests created runs ``starchat-tui run --json`` through setpriv; a fake TUI of that
    user holds the API key in its environment."""

    def __init__(self, backend, user, tmp_path):
        if user["python"] is None:
            pytest.skip("no python >= 3.10 that the test user can run")
        self.backend = backend
        self.user = user
        self.secret_value = "sk-" + secrets.token_hex(16)
        self.home = user["home"]
        self.base = self.home / f"t-{secrets.token_hex(4)}"
        for sub in ("", "config", "cache", "data", "snippets"):
            (self.base / sub).mkdir()
            os.chown(self.base / sub, user["uid"], user["gid"])
        (self.base / "config" / "config.toml").write_text(CONFIG)
        self.marker = str(self.base / "cache" / "sandbox" / "runs")
        self.fake_tui = subprocess.Popen(
            self._as_user(["sleep", "600"]), env={"OPENAI_API_KEY": self.secret_value, "PATH": "/usr/bin:/bin"}
        )
        self.app_pids = [self.fake_tui.pid]

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["setpriv", f"--reuid={self.user['uid']}", f"--regid={self.user['gid']}", "--clear-groups", "--", *argv]

    def run(self, code, lang="python", *, timeout=10.0, workdir=None):
        path = self.base / "snippets" / f"s{secrets.token_hex(4)}.txt"
        path.write_text(code)
        os.chown(path, self.user["uid"], self.user["gid"])
        argv = [self.user["python"], "-m", "starchat_tui", "run", "--json", "--lang", lang, "--timeout", str(timeout)]
        if workdir is not None:
            argv += ["--workdir", str(workdir)]
        env = {
            "HOME": str(self.home), "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
            "PYTHONPATH": self.user["pythonpath"], "OPENAI_API_KEY": self.secret_value,
            "STARCHAT_TUI_SANDBOX_BACKEND": self.backend,
            **{name: os.environ[name] for name in ("STARCHAT_TUI_BWRAP",) if name in os.environ},
            "STARCHAT_TUI_CONFIG_DIR": str(self.base / "config"),
            "STARCHAT_TUI_CACHE_DIR": str(self.base / "cache"),
            "STARCHAT_TUI_DATA_DIR": str(self.base / "data"),
        }
        argv = self._as_user(argv + [str(path)])
        done = subprocess.run(argv, env=env, capture_output=True, timeout=timeout + 60, cwd=self.home)
        assert done.stdout, f"the CLI printed nothing (exit {done.returncode}): {done.stderr.decode()[-2000:]}"
        result = json.loads(done.stdout)
        assert result["exit_code"] == done.returncode, "the CLI must exit with the snippet's exit code"
        assert result["backend"] == self.backend
        return result

    def new_workdir(self) -> Path:
        folder = self.base / f"wd-{secrets.token_hex(4)}"
        folder.mkdir()
        os.chown(folder, self.user["uid"], self.user["gid"])
        return folder

    def close(self) -> None:
        shutil.rmtree(self.base, ignore_errors=True)


def _scenarios() -> list:
    """(who, backend) for every backend this machine has; a skipped param says why when it has none.
    Not as root, the app already runs as an ordinary user: the "user" scenario would repeat it."""
    whom = ("app", "user") if hasattr(os, "geteuid") and os.geteuid() == 0 else ("app",)
    found = []
    for backend in params():
        if isinstance(backend, str):
            found += [pytest.param((who, backend), id=f"{who}-{backend}") for who in whom]
        else:
            found.append(pytest.param(("app", None), id="no-backend", marks=backend.marks))
    return found


@pytest.fixture(params=_scenarios())
def scenario(request, tmp_path, monkeypatch, isolated_home):
    who, backend = request.param
    if who == "app":
        chosen = AppScenario(backend, tmp_path, monkeypatch, isolated_home)
        chosen.marker = str(chosen._runs_folder())
    else:
        chosen = UserScenario(backend, request.getfixturevalue("test_user"), tmp_path)
    yield chosen
    chosen.fake_tui.kill()
    chosen.fake_tui.wait()
    janitor.wait()
    if isinstance(chosen, UserScenario):
        chosen.close()


@pytest.fixture
def listener():
    server = Listener()
    # The check must be able to fail: an unsandboxed sender is heard.
    import socket

    with socket.create_connection(("127.0.0.1", server.tcp_port)) as conn:
        conn.sendall(b"control")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.sendto(b"control", ("127.0.0.1", server.udp_port))
    deadline = time.monotonic() + 3
    while len([item for item in server.received if item == b"control"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.received.count(b"control") == 2, server.received
    server.received.clear()
    yield server
    server.close()


# ---------------------------------------------------------------------------------------------------
# The attacks


def test_network_to_localhost_is_unreachable(scenario, listener):
    python = scenario.run(snippet("net_tcp_udp.py", TCP_PORT=listener.tcp_port, UDP_PORT=listener.udp_port))
    shell = scenario.run(snippet("net_tcp.sh", TCP_PORT=listener.tcp_port), "bash")
    time.sleep(0.3)  # a stray datagram would have landed by now
    assert listener.received == []
    assert "tcp: blocked" in python["stdout"] and "udp: blocked" in python["stdout"], python
    assert "tcp: blocked" in shell["stdout"], shell


def app_environment_holds(pid: int, value: str, wait: float = 5.0) -> bool:
    """Whether ``value`` shows in the environment of process ``pid``. A process still inside exec (setpriv
    becoming sleep) shows an empty environment for a moment, so look again until ``wait`` runs out."""
    deadline = time.monotonic() + wait
    while True:
        if value.encode() in Path(f"/proc/{pid}/environ").read_bytes():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def test_secrets_in_home_and_environment_stay_hidden(scenario):
    planted = scenario.home / f".starchat-sandbox-secret-{secrets.token_hex(4)}"
    file_secret = "file-secret-" + secrets.token_hex(8)
    planted.write_text(file_secret)
    planted.chmod(0o600)
    if isinstance(scenario, UserScenario):
        os.chown(planted, scenario.user["uid"], scenario.user["gid"])
    try:
        # The checks can fail: from outside, the secrets are there to be found.
        assert app_environment_holds(scenario.fake_tui.pid, scenario.secret_value)
        result = scenario.run(snippet("read_secrets.py", SECRET_FILE=planted, HOME=scenario.home))
    finally:
        planted.unlink()
    seen = result["stdout"] + result["stderr"]
    assert result["exit_code"] == 0, seen
    assert file_secret not in seen
    assert scenario.secret_value not in seen
    assert "READ:" not in seen
    assert "env:" in seen  # the snippet did get that far


def test_writes_outside_the_work_dir_fail(scenario):
    mark = secrets.token_hex(4)
    dotfile = scenario.home / f".starchat-test-bashrc-{mark}"
    dotfile.write_text("original\n")
    if isinstance(scenario, UserScenario):
        os.chown(dotfile, scenario.user["uid"], scenario.user["gid"])
    host_tmp = Path("/tmp") / f"starchat-test-{mark}-outside"
    app_folder = scenario.home / f".starchat-test-{mark}-new"
    targets = [str(dotfile), str(host_tmp), str(app_folder)]
    try:
        result = scenario.run(snippet("write_outside.py", TARGETS=json.dumps(targets)))
        assert dotfile.read_text() == "original\n"
        assert not host_tmp.exists()
        assert not app_folder.exists()
        # Inside, /tmp is the sandbox's own: a write there may "succeed" without reaching the host.
        assert len(result["stdout"].splitlines()) == 3, result
    finally:
        for path in (dotfile, host_tmp, app_folder):
            path.unlink(missing_ok=True)


def test_fork_bomb_is_bounded(scenario):
    with Sampler(scenario.marker) as sampler:
        result = scenario.run(snippet("forkbomb.py"), timeout=20)
    assert sampler.peak_count >= 10, "the sampler must see the bomb's processes"
    # 64 from [sandbox] processes, plus bwrap's two processes and some slack for the sampler's timing.
    assert sampler.peak_count <= 64 + 6, sampler.peak_count
    assert "fork refused" in result["stdout"], result
    assert wait_gone(scenario.marker) == []
    scenario.still_works()


def test_memory_bombs_are_bounded(scenario):
    single = scenario.run(snippet("membomb.py"), timeout=20)
    assert "MemoryError" in single["stderr"] and single["exit_code"] != 0, single
    with Sampler(scenario.marker) as sampler:
        result = scenario.run(snippet("fork_membomb.py"), timeout=30)
    assert sampler.peak_rss >= 200 * MiB, "the sampler must see the bomb's memory"
    # The four children wanted 2800 MiB in all; the run has 1024 MiB.
    assert sampler.peak_rss < 2000 * MiB, sampler.peak_rss / MiB
    assert "memory" in (result["stopped"] or ""), result
    assert "all children finished" not in result["stdout"]
    assert wait_gone(scenario.marker) == []
    scenario.still_works()


def test_infinite_loop_is_killed_at_the_timeout(scenario):
    started = time.monotonic()
    result = scenario.run(snippet("loop.py"), timeout=1)
    assert result["timed_out"] is True and result["exit_code"] == 124, result
    assert time.monotonic() - started < 1 + (8 if isinstance(scenario, UserScenario) else 3)
    assert wait_gone(scenario.marker, timeout=0.5) == []


def test_a_flood_of_output_is_capped_and_stopped(scenario):
    started = time.monotonic()
    result = scenario.run(snippet("bigoutput.py"), timeout=30)
    assert result["truncated"] is True, {k: v for k, v in result.items() if k != "stdout"}
    assert len(result["stdout"].encode()) <= 1 * MiB
    assert "wrote 100 MB" not in result["stdout"]
    assert time.monotonic() - started < 10
    assert wait_gone(scenario.marker) == []


def test_a_daemon_does_not_outlive_the_run(scenario):
    workdir = scenario.new_workdir()
    try:
        result = scenario.run(snippet("daemon.py"), workdir=workdir)
        assert "daemon started" in result["stdout"], result
        heartbeat = workdir / "heartbeat"
        assert heartbeat.exists(), "the daemon must have run"
        assert wait_gone(scenario.marker, timeout=1) == []
        beat = heartbeat.read_text()
        time.sleep(0.3)
        assert heartbeat.read_text() == beat, "something is still writing the heartbeat"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_killing_the_parent_and_the_app_fails(scenario):
    result = scenario.run(snippet("kill_parent.py", PIDS=", ".join(map(str, scenario.app_pids))))
    assert scenario.fake_tui.poll() is None, "the stand-in TUI was killed"
    assert result["exit_code"] == 0, result
    assert "still here" in result["stdout"]
    scenario.still_works()


def test_filling_tmp_is_contained(scenario):
    mark = f"starchat-test-{secrets.token_hex(4)}"
    before = set(os.listdir("/tmp"))
    result = scenario.run(snippet("fill_tmp.py", MARK=mark), timeout=30)
    janitor.wait()
    assert not [name for name in set(os.listdir("/tmp")) - before if mark in name]
    assert "NOT STOPPED" not in result["stdout"], result
    lines = [line for line in result["stdout"].splitlines() if "stopped after" in line]
    written = {line.split()[0]: int(line.split("stopped after")[1].split()[0]) for line in lines}
    assert all(size <= 64 for size in written.values()), written
    if scenario.backend == "bwrap":
        # /tmp is the sandbox's own tmpfs: usable, up to its 32 MiB.
        assert 16 <= written["/tmp"] <= 32, written
    else:
        # No private /tmp: the host's is out of reach, and TMPDIR (on disk) is watched.
        assert written.get("/tmp") == 0, written
    assert wait_gone(scenario.marker) == []
