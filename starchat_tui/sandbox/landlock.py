"""Landlock through ctypes: the file-system and network allow-list for the fallback backend.

Landlock lets an unprivileged process drop access to everything outside a list of paths, for itself and
everything it execs. It needs no user namespaces, so it works where bubblewrap is blocked (Ubuntu 24.04's
AppArmor rule, some containers). What each ABI version adds:
1 file system, 2 rename across folders (REFER), 3 truncate, 4 TCP bind/connect, 5 device ioctls,
6 scoping of signals and abstract unix sockets (the snippet can no longer signal our processes).
UDP is not covered before ABI 10; the seccomp filter blocks it.

Order matters: build the rules (``Ruleset``) while the process can still open what it needs, then
``restrict()`` last, right before exec. Standard library only, no relative imports (see seccomp.py).
"""

from __future__ import annotations

import ctypes
import os
import struct

_SYS_CREATE_RULESET = 444
_SYS_ADD_RULE = 445
_SYS_RESTRICT_SELF = 446
_CREATE_RULESET_VERSION = 1
_RULE_PATH_BENEATH = 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13
TRUNCATE = 1 << 14
IOCTL_DEV = 1 << 15

NET_BIND_TCP = 1 << 0
NET_CONNECT_TCP = 1 << 1
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1

# Rights that make sense on a file (not a folder); the kernel rejects a file rule holding others.
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV

READ = EXECUTE | READ_FILE | READ_DIR

_libc = None


def _syscall():
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.syscall.restype = ctypes.c_long
    return _libc


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 when Landlock is missing or disabled."""
    try:
        libc = _syscall()
    except OSError:
        return 0
    version = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(_CREATE_RULESET_VERSION))
    return version if version > 0 else 0


def handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1  # ABI 1: EXECUTE .. MAKE_SYM
    if abi >= 2:
        rights |= REFER
    if abi >= 3:
        rights |= TRUNCATE
    if abi >= 5:
        rights |= IOCTL_DEV
    return rights


class Ruleset:
    """A Landlock ruleset under construction; ``restrict()`` applies it to the calling process."""

    def __init__(self, abi: int, *, network: bool = False) -> None:
        if abi < 1:
            raise OSError("Landlock is not available in this kernel")
        self.abi = abi
        self.fs = handled_fs(abi)
        net = 0 if network or abi < 4 else NET_BIND_TCP | NET_CONNECT_TCP
        scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0
        if abi >= 6:
            attr, size = struct.pack("=QQQ", self.fs, net, scoped), 24
        elif abi >= 4:
            attr, size = struct.pack("=QQ", self.fs, net), 16
        else:
            attr, size = struct.pack("=Q", self.fs), 8
        libc = _syscall()
        buffer = ctypes.create_string_buffer(attr, size)
        fd = libc.syscall(_SYS_CREATE_RULESET, buffer, ctypes.c_size_t(size), ctypes.c_uint32(0))
        if fd < 0:
            raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
        self.fd = fd

    def allow(self, path: str, rights: int) -> bool:
        """Allow ``rights`` beneath ``path``; a path that does not exist is skipped (returns False)."""
        try:
            target = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            if not os.path.isdir(path):
                rights &= _FILE_RIGHTS
            rights &= self.fs
            # struct landlock_path_beneath_attr is packed: u64 allowed_access, s32 parent_fd.
            attr = ctypes.create_string_buffer(struct.pack("=Qi", rights, target), 12)
            libc = _syscall()
            if libc.syscall(_SYS_ADD_RULE, ctypes.c_int(self.fd), ctypes.c_int(_RULE_PATH_BENEATH), attr, ctypes.c_uint32(0)):
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
        finally:
            os.close(target)
        return True

    def allow_read(self, path: str) -> bool:
        return self.allow(path, READ)

    def allow_write(self, path: str) -> bool:
        return self.allow(path, self.fs)

    def restrict(self) -> None:
        """Apply the ruleset to this process for good. Needs no_new_privs, which is set here."""
        libc = _syscall()
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ctypes.c_int(self.fd), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
        os.close(self.fd)
