"""The bubblewrap command line: a minimal, allow-listed root for one snippet.

Only /usr (read-only), a handful of /etc files, the interpreter's own folders, the snippet, the work
dir and what the user shared are visible; /tmp is a size-capped tmpfs; every namespace is new, so there
is no network (unless asked for) and no way to see or signal the app's processes.

Two modes:

- an ordinary user: unprivileged bwrap in a new user namespace, with ``--disable-userns`` so the snippet
  cannot nest another one;
- root: bwrap runs privileged (no user namespace: in one, our uid would map to root and RLIMIT_NPROC
  would not apply), and ``setpriv`` inside the sandbox drops to the unprivileged sandbox uid with
  no_new_privs before the interpreter starts. Privileged bwrap also reaches paths, like /root/.pyenv,
  that the sandbox uid could not open itself.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from functools import cache

# /etc entries interpreters and libc need; nothing else of /etc is visible (no shadow, no ssh config).
ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "localtime", "timezone", "passwd", "group", "nsswitch.conf",
    "alternatives", "ssl", "ca-certificates", "ca-certificates.conf", "pki", "mime.types", "fonts",
    "locale.alias", "locale.conf", "inputrc", "bash.bashrc", "profile", "matplotlibrc",
)
ETC_NETWORK = ("resolv.conf", "hosts", "host.conf", "gai.conf", "services", "protocols")
TOP_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
# "off" hides an installed bubblewrap (CI runs the sandbox tests once that way, for the fallback); a
# path picks that bwrap program.
ENV_BWRAP = "STARCHAT_TUI_BWRAP"


def find_bwrap() -> str | None:
    chosen = os.environ.get(ENV_BWRAP, "").strip()
    if chosen.lower() == "off":
        return None
    return shutil.which(chosen or "bwrap")


def find_setpriv() -> str | None:
    found = shutil.which("setpriv", path="/usr/bin:/usr/sbin:/bin:/sbin")
    return os.path.realpath(found) if found else None


@cache
def etc_paths(network: bool) -> tuple[str, ...]:
    names = list(ETC) + (list(ETC_NETWORK) if network else [])
    paths = ["/etc/" + name for name in names]
    paths += sorted(glob.glob("/etc/python3*"))  # Debian's sitecustomize for the system python
    return tuple(path for path in paths if os.path.lexists(path))


@cache
def top_level() -> tuple[tuple[str, ...], ...]:
    """How /bin, /lib ... look on this host: symlinks into /usr (merged /usr) or real folders."""
    entries = []
    for name in TOP_DIRS:
        path = "/" + name
        if os.path.islink(path):
            entries.append(("--symlink", os.readlink(path), path))
        elif os.path.isdir(path):
            entries.append(("--ro-bind", path, path))
    return tuple(entries)


def namespace_args(*, privileged: bool, network: bool) -> list[str]:
    if privileged:
        args = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
        if not network:
            args.append("--unshare-net")
        # setpriv needs these two to switch to the sandbox uid; they vanish with that switch.
        return args + ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    args = ["--unshare-all", "--unshare-user", "--disable-userns"]
    return args + (["--share-net"] if network else [])


def build_args(
    bwrap: str,
    *,
    privileged: bool,
    network: bool,
    tmp_size: int,
    read_only: list[str],
    writable: list[str],
    cwd: str,
) -> list[str]:
    """bwrap's options (everything before ``--``); the supervisor adds --seccomp and the command."""
    args = [bwrap, *namespace_args(privileged=privileged, network=network), "--die-with-parent", "--new-session"]
    args += ["--ro-bind", "/usr", "/usr"]
    for entry in top_level():
        args += entry
    args += ["--perms", "0755", "--dir", "/etc"]
    for path in etc_paths(network):
        args += ["--ro-bind-try", path, path]
    shm = min(int(tmp_size), 64 << 20)
    args += ["--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--size", str(shm), "--tmpfs", "/dev/shm"]
    args += ["--perms", "1777", "--size", str(int(tmp_size)), "--tmpfs", "/tmp"]
    # After the tmpfs, so a venv or work dir under the host's /tmp is bound over it, not hidden by it.
    bound: list[str] = ["/usr", "/proc", "/dev"]
    made: set[str] = {"/etc", "/tmp"}
    for flag, paths in (("--ro-bind", read_only), ("--bind", writable)):
        for path in paths:
            args += _parents(path, bound, made)
            args += [flag, path, path]
            bound.append(path)
    return args + ["--chdir", cwd]


def _parents(path: str, bound: list[str], made: set[str]) -> list[str]:
    """Create the folders above a bind point as 0755: bwrap would copy modes like /root's 0700, and the
    sandbox uid could not walk through them. Folders inside an earlier bind are left alone."""
    args = []
    parent = os.path.dirname(path.rstrip("/"))
    chain = []
    while parent and parent != "/":
        chain.append(parent)
        parent = os.path.dirname(parent)
    for folder in reversed(chain):
        if folder in made or any(folder == done or folder.startswith(done.rstrip("/") + "/") for done in bound):
            continue
        made.add(folder)
        args += ["--perms", "0755", "--dir", folder]
    return args


def drop_privileges(setpriv: str, uid: int, gid: int) -> list[str]:
    """The command prefix that turns root inside the sandbox into the sandbox uid for good."""
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--no-new-privs", "--inh-caps=-all", "--"]


def probe(bwrap: str, *, privileged: bool, uid: int | None, gid: int | None, seccomp_filter: bytes | None) -> str | None:
    """Run ``true`` in a sandbox built like the real ones; None when it works, else why not."""
    true = shutil.which("true", path="/usr/bin:/bin")
    if not true:
        return "no `true` program in /usr/bin to test bwrap with"
    command = [true]
    if privileged:
        setpriv = find_setpriv()
        if not setpriv or not setpriv.startswith("/usr/"):
            return "running as root needs setpriv (util-linux) in /usr/bin to drop to the sandbox uid"
        command = drop_privileges(setpriv, uid, gid) + command
    args = build_args(bwrap, privileged=privileged, network=False, tmp_size=1 << 20, read_only=[], writable=[], cwd="/")
    read_fd = None
    status_r, status_w = os.pipe()
    try:
        if seccomp_filter:
            read_fd, write_fd = os.pipe()
            os.write(write_fd, seccomp_filter)
            os.close(write_fd)
            args += ["--seccomp", str(read_fd)]
        args += ["--json-status-fd", str(status_w), "--", *command]
        fds = tuple(fd for fd in (read_fd, status_w) if fd is not None)
        try:
            done = subprocess.run(
                args, stdin=subprocess.DEVNULL, capture_output=True, pass_fds=fds, timeout=20, env={},
                start_new_session=True,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap did not run ({error})"
    finally:
        for fd in (read_fd, status_w):
            if fd is not None:
                os.close(fd)
        os.close(status_r)
    if done.returncode == 0:
        return None
    message = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return message[-1] if message else f"bwrap exited with {done.returncode}"
