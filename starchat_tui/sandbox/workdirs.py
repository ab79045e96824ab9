"""Where runs live on disk: a fresh folder per run, the per-chat work dirs, and cleaning up after both.

Layout under the sandbox home (``<cache>/sandbox``, on disk rather than a RAM-backed /tmp)::

    runs/run-<pid>-XXXX/snippet.py          the code (read-only to the snippet)
    runs/run-<pid>-XXXX/_starchat_plots.py  the matplotlib hook
    runs/run-<pid>-XXXX/tmp/                TMPDIR when there is no private /tmp (Landlock, none)
    runs/run-<pid>-XXXX/work/               the fresh work dir when the caller gave none
    mpl/                                    matplotlib's font cache, shared between runs

After a run only the images in a fresh work dir are kept (the caller shows them); the newest
``KEEP_RUNS`` such folders are kept, older ones go at the next run, and so do the folders of an app
(``<pid>``) that was killed before it could clean up.
"""

from __future__ import annotations

import atexit
import os
import queue
import shutil
import stat
import tempfile
import threading
from pathlib import Path

from ..errors import UsageError
from .errors import WorkdirUnusable
from .mounts import searchable

KEEP_RUNS = 50


def reachable(path: Path, uid: int, gid: int) -> bool:
    """Whether ``uid`` could walk down to ``path`` (search permission on every folder above and on it)."""
    current = Path(path).resolve()
    for folder in [*reversed(current.parents), current]:
        try:
            info = folder.stat()
        except OSError:
            return False
        if not searchable(info, uid, gid):
            return False
    return True


def executable_by(program: str, uid: int, gid: int) -> bool:
    """Whether ``uid`` could exec ``program`` (following symlinks) without help from bubblewrap."""
    real = Path(os.path.realpath(program))
    if not reachable(real.parent, uid, gid):
        return False
    try:
        info = real.stat()
    except OSError:
        return False
    bit = stat.S_IXUSR if info.st_uid == uid else stat.S_IXGRP if info.st_gid == gid else stat.S_IXOTH
    return bool(info.st_mode & bit)


def sandbox_home(uid: int | None, gid: int | None, *, needs_reach: bool) -> Path:
    """The folder runs live under. When root runs snippets as another uid without bubblewrap (which
    binds paths as root), that uid must be able to reach it: /root/.cache usually is not, so a
    root-owned folder in /var/tmp (disk, not RAM) is used instead."""
    from ..config import cache_dir

    home = cache_dir() / "sandbox"
    home.mkdir(parents=True, exist_ok=True)
    if uid is None or not needs_reach or reachable(home, uid, gid):
        return home
    fallback = Path("/var/tmp") / f"starchat-tui-sandbox-{os.geteuid()}"
    try:
        fallback.mkdir(mode=0o711)
    except FileExistsError:
        pass
    info = os.lstat(fallback)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise UsageError(f"{fallback} exists but is not ours; remove it so the sandbox can use it")
    os.chmod(fallback, 0o711)
    return fallback


def _owner_gone(name: str) -> bool:
    """Whether the app that made run folder ``run-<pid>-...`` is gone (killed before it could clean up)."""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def prune(runs: Path, keep: int = KEEP_RUNS) -> None:
    """Delete run folders left by apps that died mid-run, and all but the newest ``keep`` finished ones
    (which by now only hold images). A run still in progress is never touched."""
    try:
        entries = [entry for entry in os.scandir(runs) if entry.name.startswith("run-")]
    except FileNotFoundError:
        return
    finished = []
    for entry in entries:
        if not _unfinished(entry.path):
            finished.append(entry)
        elif _owner_gone(entry.name):
            shutil.rmtree(entry.path, ignore_errors=True)
    if len(finished) <= keep:
        return
    finished.sort(key=lambda entry: entry.stat(follow_symlinks=False).st_mtime_ns)
    for entry in finished[: len(finished) - keep]:
        shutil.rmtree(entry.path, ignore_errors=True)


def _unfinished(path: str) -> bool:
    """A finished run folder holds only its work dir (with images); an unfinished one still has the snippet."""
    try:
        return any(name.startswith("snippet") for name in os.listdir(path))
    except OSError:
        return False


def new_run_dir(home: Path) -> Path:
    runs = home / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    prune(runs, KEEP_RUNS - 1)
    run_dir = Path(tempfile.mkdtemp(prefix=f"run-{os.getpid()}-", dir=runs))
    # Readable (not writable) by the sandbox uid, which may not be us when we are root.
    run_dir.chmod(0o755)
    return run_dir


def give(path: Path, uid: int | None, gid: int | None) -> None:
    """Hand a folder we made to the sandbox uid (when root runs snippets as another uid)."""
    if uid is not None:
        os.chown(path, uid, gid)


def check_workdir(path: str | os.PathLike, uid: int | None, gid: int | None, *, needs_reach: bool) -> Path:
    """A caller's persistent work dir, checked: it must exist, and the sandbox uid must own it."""
    workdir = Path(path).expanduser()
    if not workdir.is_dir():
        raise WorkdirUnusable(f"work dir {workdir}: no such folder; create it first")
    workdir = workdir.resolve()
    if uid is None:
        return workdir
    info = workdir.stat()
    if info.st_uid != uid:
        if any(workdir.iterdir()):
            raise WorkdirUnusable(
                f"work dir {workdir} belongs to uid {info.st_uid}, but snippets run as uid {uid} because "
                f"starchat-tui runs as root: use an empty folder, or chown -R {uid}:{gid} {workdir}"
            )
        os.chown(workdir, uid, gid)
    if needs_reach and not reachable(workdir, uid, gid):
        raise WorkdirUnusable(
            f"work dir {workdir} is inside a folder uid {uid} cannot enter; without bubblewrap the "
            "sandbox cannot reach it: use a folder under /var/tmp or /srv instead"
        )
    return workdir


def check_shared(paths, uid: int | None, gid: int | None, *, needs_reach: bool) -> list[str]:
    shared = []
    for raw in paths:
        path = Path(raw).expanduser()
        if not path.exists():
            raise UsageError(f"shared path {path}: no such file or folder")
        path = path.resolve()
        if path == Path("/"):
            raise UsageError("sharing / would expose everything; share the project folder instead")
        if uid is not None and needs_reach and not reachable(path if path.is_dir() else path.parent, uid, gid):
            raise UsageError(
                f"shared path {path} is inside a folder uid {uid} cannot enter; without bubblewrap it cannot be shared"
            )
        shared.append(str(path))
    return shared


class _Janitor:
    """Deletes finished run folders on a background thread.

    Removing a folder that was just bind-mounted into a sandbox waits for the kernel to tear down that
    sandbox's mount namespace (milliseconds per folder): work nobody needs to wait for. Whatever is
    still queued at exit is deleted then.
    """

    def __init__(self) -> None:
        self.jobs: queue.Queue = queue.Queue()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    def submit(self, job) -> None:
        with self.lock:
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._work, name="sandbox-janitor", daemon=True)
                self.thread.start()
        self.jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            try:
                job()
            finally:
                self.jobs.task_done()

    def wait(self) -> None:
        """Block until every queued deletion is done."""
        self.jobs.join()


janitor = _Janitor()
atexit.register(janitor.wait)


def finish(run_dir: Path, *, fresh: bool, images: list[Path]) -> None:
    """Queue the removal of what the run left, except the images of a fresh work dir."""
    janitor.submit(lambda: _finish(run_dir, fresh=fresh, images=images))


def _finish(run_dir: Path, *, fresh: bool, images: list[Path]) -> None:
    if not fresh or not images:
        shutil.rmtree(run_dir, ignore_errors=True)
        return
    keep = {image.name for image in images}
    work = run_dir / "work"
    for entry in os.scandir(run_dir):
        if entry.path != str(work):
            _remove(entry.path)
    for entry in os.scandir(work):
        if entry.name not in keep:
            _remove(entry.path)


def _remove(path: str) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass
