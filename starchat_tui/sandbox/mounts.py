"""A private mount view for root's snippets when there is no bubblewrap.

As root, snippets run as an unprivileged uid (65534), and that uid cannot enter folders like /root
(mode 0700), where pyenv and most of root's venvs live. Without bubblewrap to bind them in, the
supervisor's child gives the run a private mount namespace instead: each blocking folder is covered by
a small read-only tmpfs (mode 0755) that holds only the interpreter's folders, bound back at their own
paths. The venv's shebangs, ``pyvenv.cfg`` and ``sys.prefix`` stay valid, and nothing else of /root is
visible. The namespace, its tmpfs and binds vanish with the run's last process.

Root only: the view needs CAP_SYS_ADMIN, which containers often withhold; ``mounts.py --probe`` (run
once by probe.py) finds out, and without a view the system python stands in (see runner.py).
Standard library only, no relative imports: the supervisor loads this file as a plain module.
"""

import ctypes
import os
import stat
import sys

_CLONE_NEWNS = 0x00020000
_MS_RDONLY = 1
_MS_NOSUID = 2
_MS_NODEV = 4
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_libc = None


def _c():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc


def _check(result, what):
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _mount(source, target, fstype, flags, data=None):
    _check(
        _c().mount(
            source.encode() if source else None, target.encode(), fstype.encode() if fstype else None,
            ctypes.c_ulong(flags), data.encode() if data else None,
        ),
        f"mount {target}",
    )


def searchable(info, uid, gid):
    """Whether uid (in group gid) may enter a folder with this stat: the one permission rule the
    sandbox needs, shared by the mount view and the work-folder checks."""
    if info.st_uid == uid:
        bit = stat.S_IXUSR
    elif info.st_gid == gid:
        bit = stat.S_IXGRP
    else:
        bit = stat.S_IXOTH
    return bool(info.st_mode & bit)


def blocking_folder(path, uid, gid):
    """The highest folder above ``path`` that ``uid`` cannot enter, or None when it reaches ``path``'s folder."""
    current = os.path.dirname(os.path.abspath(path))
    chain = []
    while True:
        chain.append(current)
        if current == "/":
            break
        current = os.path.dirname(current)
    for folder in reversed(chain):
        try:
            info = os.stat(folder)
        except OSError:
            return None
        if not searchable(info, uid, gid):
            return folder
    return None


def plan(paths, uid, gid):
    """[(cover, [paths under it])]: the folders to cover with a tmpfs, and what to bind back inside each.

    ``paths`` are what the run must reach (the interpreter's folders); those ``uid`` reaches already
    are left alone. A folder that ``uid`` cannot enter inside a bound path is not fixed here: the
    child checks, once it is that uid, that it can run the interpreter.
    """
    covers = {}
    for path in paths:
        cover = blocking_folder(path, uid, gid)
        if cover is None or cover == "/" or not os.path.exists(path):
            continue
        covers.setdefault(cover, [])
        if path not in covers[cover]:
            covers[cover].append(path)
    # A cover inside another cover would be hidden by the outer tmpfs: bind its paths there instead.
    merged = {}
    for cover in sorted(covers, key=len):
        outer = next((done for done in merged if cover.startswith(done.rstrip("/") + "/")), None)
        merged.setdefault(outer or cover, []).extend(covers[cover])
    return [(cover, sorted(set(binds))) for cover, binds in merged.items()]


def apply(views):
    """In the run's child, as root, before dropping to the sandbox uid: build the view."""
    if not views:
        return
    _check(_c().unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Private, so that nothing mounted here shows on the host (systemd makes / shared).
    _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
    for cover, binds in views:
        # Opened before the tmpfs hides them; a bind from /proc/self/fd/N reaches them afterwards.
        sources = [(path, os.open(path, os.O_PATH | os.O_CLOEXEC)) for path in binds]
        _mount("starchat-view", cover, "tmpfs", _MS_NOSUID | _MS_NODEV, "mode=0755,size=1m,nr_inodes=4096")
        for path, fd in sources:
            relative = os.path.relpath(path, cover)
            target = os.path.join(cover, relative)
            os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
            if stat.S_ISDIR(os.fstat(fd).st_mode):
                os.makedirs(target, mode=0o755, exist_ok=True)
            else:
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o644))
            _mount(f"/proc/self/fd/{fd}", target, None, _MS_BIND | _MS_REC)
            os.close(fd)
        _mount(None, cover, None, _MS_REMOUNT | _MS_RDONLY | _MS_NOSUID | _MS_NODEV)


def main():
    """``python -I -S mounts.py --probe``: build a throwaway view, exit 0 when that works (see probe.py)."""
    if sys.argv[1:] != ["--probe"]:
        sys.stderr.write("usage: mounts.py --probe (run by starchat-tui, not by hand)\n")
        sys.exit(2)
    try:
        _check(_c().unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
        _mount(None, "/", None, _MS_REC | _MS_PRIVATE)
        # Seen only inside this process's namespace, which ends with it.
        _mount("starchat-view", "/tmp", "tmpfs", _MS_NOSUID | _MS_NODEV, "size=4k")
    except OSError as error:
        sys.stderr.write(f"{error.strerror}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
