"""Which sandbox this machine can give snippets: probed once, cached, and explained.

The ladder, best first: ``bwrap`` (namespaces + seccomp), ``landlock`` (Landlock + seccomp, for when user
namespaces are blocked), then ``none``. ``none`` is never chosen quietly: it is not ``safe``, so
``run()`` refuses it unless the caller confirmed, and ``reason`` says what is missing and how to fix it.

``[sandbox] backend`` in config.toml (or ``STARCHAT_TUI_SANDBOX_BACKEND``) can pin a rung: ``auto``
(default), ``bwrap``, ``landlock`` or ``none``. A pinned rung that does not work gives ``none`` with the
reason, never a different sandbox.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from functools import cache

from ..errors import UsageError

BACKENDS = ("auto", "bwrap", "landlock", "none")
ENV_BACKEND = "STARCHAT_TUI_SANDBOX_BACKEND"
DEFAULT_SANDBOX_UID = 65534  # nobody
BWRAP_HELP = (
    "install bubblewrap (Debian/Ubuntu: apt install bubblewrap; Fedora: dnf install bubblewrap; "
    "Arch: pacman -S bubblewrap)"
)
USERNS_HELP = (
    "unprivileged user namespaces are blocked; on Ubuntu 24.04+ allow them for bwrap with an AppArmor "
    "profile (/etc/apparmor.d/bwrap with `userns,`) or sysctl kernel.apparmor_restrict_unprivileged_userns=0"
)


@dataclass(frozen=True)
class BackendInfo:
    """The chosen backend and why. ``tried`` has one line per rung of the ladder, for ``doctor``."""

    name: str
    reason: str
    safe: bool
    seccomp: bool = False
    landlock_abi: int = 0
    uid: int | None = None  # the uid snippets run as when we are root; None: our own uid
    gid: int | None = None
    bwrap: str | None = None
    tried: tuple[str, ...] = field(default_factory=tuple)
    # Root without bubblewrap: whether a private mount view can show the sandbox uid folders it cannot
    # enter (pyenv, a venv under /root); when it cannot, ``view_problem`` says why.
    mount_view: bool = False
    view_problem: str | None = None

    @property
    def privileged(self) -> bool:
        return self.uid is not None

    @property
    def label(self) -> str:
        """Short badge text: bwrap+seccomp, landlock+seccomp, NONE ..."""
        if self.name == "none":
            return "NONE"
        return f"{self.name}+seccomp" if self.seccomp else self.name


def requested_backend(section: dict | None = None) -> str:
    if section is None:
        from ..config import load_settings

        section = load_settings().section("sandbox")
    value = os.environ.get(ENV_BACKEND) or section.get("backend") or "auto"
    value = str(value).strip().lower()
    if value not in BACKENDS:
        raise UsageError(f"sandbox backend {value!r} is not one of {', '.join(BACKENDS)}; fix [sandbox] backend or {ENV_BACKEND}")
    return value


def sandbox_identity(section: dict) -> tuple[int | None, int | None]:
    """Root never runs snippets as root: (uid, gid) to drop to, from [sandbox] uid/gid; (None, None) otherwise."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return None, None
    uid = section.get("uid", DEFAULT_SANDBOX_UID)
    if isinstance(uid, bool) or not isinstance(uid, int) or uid <= 0:
        raise UsageError(f"[sandbox] uid must be a positive number (not root), not {uid!r}")
    gid = section.get("gid")
    if gid is None:
        import pwd

        try:
            gid = pwd.getpwuid(uid).pw_gid
        except KeyError:
            gid = uid
    if isinstance(gid, bool) or not isinstance(gid, int) or gid <= 0:
        raise UsageError(f"[sandbox] gid must be a positive number (not root), not {gid!r}")
    return uid, gid


def probe_backend(section: dict | None = None) -> BackendInfo:
    """The backend runs will use. Probed once and cached (per requested backend and identity);
    ``probe_backend.cache_clear()`` forgets it, for example after bubblewrap was installed."""
    if section is None:
        from ..config import load_settings

        section = load_settings().section("sandbox")
    uid, gid = sandbox_identity(section)
    return _probe(requested_backend(section), uid, gid)


@cache
def _probe(requested: str, uid: int | None, gid: int | None) -> BackendInfo:
    from . import bwrap, landlock, seccomp

    identity = {"uid": uid, "gid": gid}
    as_whom = f"; snippets run as uid {uid} because starchat-tui runs as root" if uid is not None else ""
    if requested == "none":
        return BackendInfo(
            "none", f"the sandbox is turned off ([sandbox] backend or {ENV_BACKEND} is \"none\")", False,
            tried=("none: chosen by configuration",), **identity,
        )
    if not sys.platform.startswith("linux"):
        return BackendInfo(
            "none", f"no sandbox on {sys.platform}: bubblewrap and Landlock are Linux-only", False,
            tried=(f"bwrap, landlock: not available on {sys.platform}",), **identity,
        )

    tried: list[str] = []
    has_seccomp = seccomp.supported()
    filter_bytes = seccomp.build_filter() if has_seccomp else None
    seccomp_note = "" if has_seccomp else f" (no seccomp filter: no syscall table for {seccomp.machine()})"

    if requested in ("auto", "bwrap"):
        path = bwrap.find_bwrap()
        if path is None and os.environ.get(bwrap.ENV_BWRAP, "").strip().lower() == "off":
            problem = f"hidden by {bwrap.ENV_BWRAP}=off"
        elif path is None:
            problem = f"not installed: {BWRAP_HELP}"
        else:
            problem = bwrap.probe(path, privileged=uid is not None, uid=uid, gid=gid, seccomp_filter=filter_bytes)
            if problem and "namespace" in problem.lower():
                problem = f"{problem} ({USERNS_HELP})"
        if problem is None:
            mode = "privileged, then setpriv to the sandbox uid" if uid is not None else "unprivileged user namespaces work"
            tried.append(f"bwrap: ok ({path}, {mode})")
            return BackendInfo(
                "bwrap", f"bubblewrap works here ({mode}){seccomp_note}{as_whom}", True,
                seccomp=has_seccomp, bwrap=path, tried=tuple(tried), **identity,
            )
        tried.append(f"bwrap: {problem}")
        if requested == "bwrap":
            return BackendInfo("none", f"bwrap was asked for but {problem}", False, tried=tuple(tried), **identity)

    abi = landlock.abi_version()
    bwrap_problem = f" (bubblewrap unavailable: {tried[0].split(': ', 1)[1]})" if tried else ""
    if abi >= 1 and has_seccomp:
        view = _mount_view(uid)
        if abi >= 6:
            tried.append(f"landlock: ok (ABI {abi}, seccomp)")
            return BackendInfo(
                "landlock", f"Landlock ABI {abi} + seccomp{bwrap_problem}{as_whom}", True,
                seccomp=True, landlock_abi=abi, tried=tuple(tried), **identity, **view,
            )
        # ABI 1-5 still fences files (and TCP from 4) but cannot stop signals to the app's processes.
        tried.append(f"landlock: partial (ABI {abi}; needs 6, Linux 6.12+, to stop signals to other processes)")
        return BackendInfo(
            "landlock", f"partial sandbox: Landlock ABI {abi} + seccomp cannot stop a snippet signalling your "
            f"other processes{bwrap_problem}", False, seccomp=True, landlock_abi=abi, tried=tuple(tried),
            **identity, **view,
        )
    if abi == 0:
        tried.append("landlock: not enabled in this kernel (needs Linux 5.13+ with landlock in the lsm= list)")
    else:
        tried.append(f"landlock: ABI {abi} but no seccomp filter for {seccomp.machine()}, so UDP would get out")
    return BackendInfo(
        "none", f"no working sandbox: {'; '.join(tried)}", False,
        seccomp=has_seccomp, landlock_abi=abi, tried=tuple(tried), **identity,
    )


def _mount_view(uid: int | None) -> dict:
    """Whether runs as the sandbox uid can get a private mount view (see mounts.py): asked of a fresh
    process, since the app has threads and unshare() wants a clean one."""
    if uid is None:
        return {}
    import subprocess

    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mounts.py")
    try:
        done = subprocess.run(
            [sys.executable, "-I", "-S", script, "--probe"], stdin=subprocess.DEVNULL, capture_output=True,
            timeout=20, env={}, cwd="/",
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"view_problem": f"the mount-namespace check did not run ({error})"}
    if done.returncode == 0:
        return {"mount_view": True}
    why = done.stderr.decode("utf-8", "replace").strip().splitlines()
    return {"view_problem": f"no private mount namespace for runs ({why[-1] if why else 'refused'})"}


probe_backend.cache_clear = _probe.cache_clear  # type: ignore[attr-defined]
