"""``run()``: one snippet, in the best sandbox this machine has, under limits, with its output capped.

    from starchat_tui.sandbox import run, Limits
    result = run("print(1)", "python", timeout=10.0, limits=Limits(), network=False)

Whatever the backend, stdin is /dev/null, the environment is an allow-list (no tokens, no API keys),
a wall-clock timeout kills the whole process tree, CPU/file-size/open-file/process limits apply, the
output is capped (1 MiB by default; the run stops when it passes), and a per-run supervisor makes sure
nothing outlives the run, even when the app itself is killed.
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from . import bwrap, languages, plots, workdirs
from .errors import SandboxError, UnsafeRunRefused
from .launcher import Outcome, OutputCallback, launch
from .limits import Limits, MiB
from .probe import BackendInfo, probe_backend
from .result import TIMEOUT_EXIT_CODE, Result

BASE_PATH = "/usr/local/bin:/usr/bin:/bin"
MPL_CACHE_MAX = 64 * MiB
_LINUX = sys.platform.startswith("linux")


def run(
    code: str,
    language: str = "python",
    *,
    timeout: float = 10.0,
    limits: Limits | None = None,
    network: bool = False,
    workdir: str | os.PathLike | None = None,
    share: Iterable[str | os.PathLike] = (),
    allow_unsafe: bool = False,
    on_output: OutputCallback | None = None,
    cancel: threading.Event | None = None,
) -> Result:
    """Run ``code`` with ``language``'s interpreter in the sandbox and return what happened.

    ``workdir=None`` gives a fresh folder (``result.workdir``; only its images are kept afterwards); a
    given ``workdir`` persists between runs (one per chat). ``share`` paths are visible read-only at
    their own paths. When there is no safe sandbox (``probe_backend().safe`` is False) the run is
    refused with UnsafeRunRefused unless ``allow_unsafe`` says the user confirmed this run.
    ``on_output(stream, text)`` sees the output as it comes (from the calling thread); setting the
    ``cancel`` event stops the run. Raises UsageError for bad input, SandboxError when the sandbox
    itself cannot start.
    """
    from ..config import load_settings

    if not isinstance(code, str):
        raise TypeError("code must be a str")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    section = load_settings().section("sandbox")
    limits = limits or Limits.from_config(section)
    info = probe_backend(section)
    if not info.safe and not allow_unsafe:
        raise UnsafeRunRefused(f"not running it: {info.reason}. Confirm to run it anyway, without a sandbox")
    lang = interpreter_for(languages.resolve(language, section), info)

    layout = _Layout.create(info, workdir)
    try:
        shared = workdirs.check_shared(share, info.uid, info.gid, needs_reach=layout.needs_reach)
        layout.write_snippet(code, lang)
        before = {} if layout.fresh else plots.snapshot(layout.work)
        spec = _spec(layout, lang, info, limits, float(timeout), bool(network), shared)
        outcome = launch(spec, output_cap=int(limits.output), on_output=on_output, cancel=cancel)
        result = _result(outcome, layout, before, info, lang, float(timeout), limits)
    except BaseException:
        workdirs.finish(layout.run_dir, fresh=layout.fresh, images=[])
        raise
    workdirs.finish(layout.run_dir, fresh=layout.fresh, images=result.images)
    return result


def interpreter_for(lang: languages.Language, info: BackendInfo) -> languages.Language:
    """The language as this backend will really run it.

    As root without bubblewrap, snippets run as the sandbox uid and must exec the interpreter
    themselves. A python under /root is out of that uid's reach, so a private mount view shows it
    (mounts.py). Where the machine allows no view, the system python stands in, and the result says
    why when the snippet then misses a module.
    """
    if info.uid is None or info.name == "bwrap" or info.mount_view:
        return lang
    if workdirs.executable_by(lang.command[0], info.uid, info.gid):
        return lang
    cover = _blocking_folder(lang.command[0], info)
    why = (
        f"uid {info.uid} cannot enter {cover} (snippets run as uid {info.uid} because starchat-tui runs as root)"
        f" and {info.view_problem or 'there is no private mount view without bubblewrap'}"
    )
    fix = f"install bubblewrap, or install starchat-tui with a Python outside {cover}"
    if lang.is_python and workdirs.executable_by("/usr/bin/python3", info.uid, info.gid):
        return languages.Language(
            lang.name, ("/usr/bin/python3", *lang.command[1:]), lang.suffix,
            stand_in=f"/usr/bin/python3 stands in for {lang.command[0]}, without its packages: {why}; {fix}",
        )
    raise UsageError(f"{lang.command[0]}: {why}; {fix}")


def _blocking_folder(program: str, info: BackendInfo) -> str:
    from . import mounts

    for path in (program, os.path.realpath(program)):
        cover = mounts.blocking_folder(path, info.uid, info.gid)
        if cover is not None:
            return cover
    return os.path.dirname(os.path.realpath(program))


@dataclass
class _Layout:
    """The folders of one run (see workdirs.py)."""

    info: BackendInfo
    home: Path
    run_dir: Path
    work: Path
    fresh: bool
    tmp: str
    mpl_dir: Path
    snippet: Path | None = None

    @property
    def needs_reach(self) -> bool:
        # Privileged bwrap binds paths as root; every other way, the sandbox uid walks to them itself.
        return self.info.name != "bwrap"

    @classmethod
    def create(cls, info: BackendInfo, workdir) -> _Layout:
        uid, gid = info.uid, info.gid
        needs_reach = info.name != "bwrap"
        home = workdirs.sandbox_home(uid, gid, needs_reach=needs_reach)
        given = None if workdir is None else workdirs.check_workdir(workdir, uid, gid, needs_reach=needs_reach)
        run_dir = workdirs.new_run_dir(home)
        try:
            if given is None:
                work = run_dir / "work"
                work.mkdir()
                workdirs.give(work, uid, gid)
            else:
                work = given
            if info.name == "bwrap":
                tmp = "/tmp"  # a size-capped tmpfs of the sandbox's own
            else:
                (run_dir / "tmp").mkdir()
                workdirs.give(run_dir / "tmp", uid, gid)
                tmp = str(run_dir / "tmp")
            mpl_dir = home / "mpl"
            if mpl_dir.is_dir() and _usage(mpl_dir) > MPL_CACHE_MAX:
                shutil.rmtree(mpl_dir, ignore_errors=True)  # only a cache, and every snippet may write to it
            if not mpl_dir.is_dir():
                # Snippets run side by side (eval checks a task's samples at once): another one may make it
                # between the check and here.
                mpl_dir.mkdir(exist_ok=True)
                workdirs.give(mpl_dir, uid, gid)
        except BaseException:
            workdirs.finish(run_dir, fresh=True, images=[])
            raise
        return cls(info, home, run_dir, work, given is None, tmp, mpl_dir)

    def write_snippet(self, code: str, lang: languages.Language) -> None:
        self.snippet = self.run_dir / f"snippet{lang.suffix}"
        self.snippet.write_text(code, encoding="utf-8")
        self.snippet.chmod(0o644)
        plots.install_backend(self.run_dir)


def _install_roots(program: str) -> list[str]:
    """Folders an interpreter outside /usr needs visible: its install root and, for a venv, the venv.

    ``/opt/node/bin/node`` -> ``/opt/node``; ``~/.venv/bin/python`` -> ``~/.venv`` plus the Python it
    links to. A root that is /, the home folder or above it is never bound whole: only the program's
    own folder is, so a python in ~/bin does not expose the home folder.
    """
    home = os.path.realpath(os.path.expanduser("~"))
    given = os.path.abspath(program)
    real = os.path.realpath(program)
    roots = []
    venv = os.path.dirname(os.path.dirname(given))
    if os.path.isfile(os.path.join(venv, "pyvenv.cfg")):
        roots.append(venv)
    roots.append(os.path.dirname(os.path.dirname(real)))
    safe = []
    for root in roots:
        if root == "/usr" or root.startswith("/usr/"):
            continue
        if root == "/" or root == home or (home + "/").startswith(root.rstrip("/") + "/"):
            root = os.path.dirname(real)
        if root not in safe:
            safe.append(root)
    return safe


def _environment(layout: _Layout, lang: languages.Language) -> dict[str, str]:
    program_dir = os.path.dirname(os.path.abspath(lang.command[0]))
    extra = [] if program_dir.startswith("/usr/") or program_dir in ("/bin", "/sbin") else [program_dir]
    env = {
        "PATH": ":".join([*extra, BASE_PATH]),
        "HOME": str(layout.work),
        "TMPDIR": layout.tmp,
        "LANG": "C.UTF-8",
        "TERM": "dumb",
        "NO_COLOR": "1",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONIOENCODING": "utf-8",
        # The hook folder for pythons a shell snippet starts, and the work dir for modules earlier runs wrote.
        "PYTHONPATH": f"{layout.run_dir}:{layout.work}",
        "XDG_CACHE_HOME": layout.tmp,
    }
    env.update(plots.environment(layout.work, layout.mpl_dir))
    return env


def _spec(layout: _Layout, lang, info: BackendInfo, limits: Limits, timeout: float, network: bool, shared: list[str]) -> dict:
    """Everything the supervisor needs, as plain data (it travels marshalled)."""
    uid, gid = info.uid, info.gid
    command = [*lang.command, str(layout.snippet)]
    roots = _install_roots(lang.command[0])
    spec = {
        "backend": info.name,
        "command": command,
        "env": _environment(layout, lang),
        "cwd": str(layout.work),
        "rlimits": limits.rlimits(timeout),
        "nproc": int(limits.processes) if _LINUX else None,
        "count_uid": uid if uid is not None else os.getuid(),
        "timeout": timeout,
        "memory": int(limits.memory),
        "network": network,
        "seccomp": _filter(network) if info.seccomp else None,
        # Everything the snippet can write to on disk; what was there before the run does not count.
        "disk_paths": [str(layout.work), str(layout.mpl_dir)] + ([] if info.name == "bwrap" else [layout.tmp]),
        "disk_limit": int(limits.disk) + (0 if layout.fresh else _usage(layout.work)) + _usage(layout.mpl_dir),
    }
    if info.name == "bwrap":
        spec["bwrap"] = bwrap.build_args(
            info.bwrap, privileged=info.privileged, network=network, tmp_size=limits.tmp_size,
            read_only=[*roots, str(layout.run_dir), *shared], writable=[str(layout.work), str(layout.mpl_dir)],
            cwd=str(layout.work),
        )
        if info.privileged:  # as root, bwrap runs privileged and setpriv drops to the sandbox uid inside
            spec["command"] = bwrap.drop_privileges(bwrap.find_setpriv(), uid, gid) + command
        return spec
    spec["uid"], spec["gid"] = uid, gid
    if uid is not None and info.mount_view:
        from . import mounts

        spec["views"] = mounts.plan([*roots, os.path.dirname(os.path.abspath(lang.command[0]))], uid, gid)
    if info.name == "landlock":
        from . import landlock

        spec["landlock_abi"] = info.landlock_abi
        system = ["/usr", *[f"/{name}" for name in bwrap.TOP_DIRS], *bwrap.etc_paths(network)]
        spec["read"] = [*system, *roots, str(layout.run_dir), *shared]
        spec["write"] = [str(layout.work), layout.tmp, str(layout.mpl_dir)]
        spec["files"] = [
            ("/dev/null", landlock.READ_FILE | landlock.WRITE_FILE | landlock.TRUNCATE),
            ("/dev/full", landlock.READ_FILE | landlock.WRITE_FILE),
            ("/dev/zero", landlock.READ_FILE),
            ("/dev/urandom", landlock.READ_FILE),
            ("/dev/random", landlock.READ_FILE),
        ]
    return spec


def _result(outcome: Outcome, layout: _Layout, before, info: BackendInfo, lang, timeout: float, limits: Limits) -> Result:
    status = outcome.status
    stderr = outcome.stderr.decode("utf-8", "replace")
    if status.get("setup_failed"):
        raise SandboxError(f"the sandbox could not start: {stderr.strip() or 'bwrap failed'}")
    if status.get("error"):
        raise SandboxError(f"could not start the snippet: {status['error']}")
    timed_out = status.get("stopped") == "timeout" and not outcome.truncated
    # A stand-in python misses the packages the user installed: say why at the failure that shows it.
    note = lang.stand_in if lang.stand_in and "ModuleNotFoundError" in stderr else None
    code = status.get("code")
    if timed_out:
        code = TIMEOUT_EXIT_CODE
    elif code is None:
        code = 128 + 9
    return Result(
        stdout=outcome.stdout.decode("utf-8", "replace"),
        stderr=stderr,
        exit_code=code,
        timed_out=timed_out,
        truncated=outcome.truncated,
        duration=outcome.duration,
        backend=info.name,
        images=plots.new_images(layout.work, before),
        workdir=layout.work,
        stopped=_stopped_text(status.get("stopped"), timeout, limits, outcome),
        language=lang.name,
        note=note,
    )


def _stopped_text(reason: str | None, timeout: float, limits: Limits, outcome: Outcome) -> str | None:
    if outcome.truncated:
        return f"output passed {limits.output // 1024} KiB; the run was stopped"
    if reason == "timeout":
        return f"timed out after {timeout:g} s"
    if reason == "memory":
        return f"used more than {limits.memory // MiB} MiB of memory; the run was stopped"
    if reason == "disk":
        return f"wrote more than {limits.disk // MiB} MiB to disk; the run was stopped"
    if reason == "cancelled" or outcome.cancelled:
        return "cancelled"
    return reason


_filters: dict[bool, bytes] = {}


def _filter(network: bool) -> bytes:
    """The seccomp program, built once per process for each network setting."""
    if network not in _filters:
        from . import seccomp

        _filters[network] = seccomp.build_filter(network=network)
    return _filters[network]


def _usage(path: Path) -> int:
    """Disk use as the supervisor's watchdog counts it, so that a run's baseline matches its checks."""
    from .supervisor import disk_usage

    return disk_usage([str(path)], stop_at=1 << 62)
