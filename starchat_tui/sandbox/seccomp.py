"""A seccomp filter for sandboxed snippets, built as raw BPF in pure Python.

The filter closes what namespaces and Landlock leave open: kernel interfaces a snippet has no business with
(ptrace, bpf, io_uring, keyrings, mounting, module loading, ...), new user namespaces, terminal input
injection, and, unless the run may use the network, every socket family but AF_UNIX. Everything else is
allowed, so ordinary Python and shell code never notices it.

The same bytes go to ``bwrap --seccomp FD`` or, for the Landlock backend, straight to ``prctl`` in the
child just before it execs the interpreter. This module imports only the standard library and uses no
relative imports: the supervisor loads it as a plain module, with ``python -I -S``.
"""

from __future__ import annotations

import errno
import os
import struct

# struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6]. Both supported CPUs are
# little-endian, so the low 32 bits of args[i] sit at 16 + 8 * i.
_NR = 0
_ARCH = 4


def _arg_low(index: int) -> int:
    return 16 + 8 * index


# Classic BPF opcodes (linux/bpf_common.h).
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000

# uname -m -> (AUDIT_ARCH_*, syscall numbers). Numbers checked against the kernel's unistd headers.
_X86_64 = {
    "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "keyctl": 250, "add_key": 248,
    "request_key": 249, "bpf": 321, "perf_event_open": 298, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "mount": 165, "umount2": 166, "pivot_root": 155,
    "unshare": 272, "setns": 308, "kexec_load": 246, "kexec_file_load": 320, "init_module": 175,
    "finit_module": 313, "delete_module": 176, "acct": 163, "swapon": 167, "swapoff": 168, "reboot": 169,
    "syslog": 103, "open_by_handle_at": 304, "name_to_handle_at": 303, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
    "quotactl": 179, "quotactl_fd": 443, "vhangup": 153, "lookup_dcookie": 212, "uselib": 134,
    "personality": 135, "socket": 41, "clone": 56, "clone3": 435, "ioctl": 16,
}
_AARCH64 = {
    "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "keyctl": 219, "add_key": 217,
    "request_key": 218, "bpf": 280, "perf_event_open": 241, "userfaultfd": 282, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "mount": 40, "umount2": 39, "pivot_root": 41,
    "unshare": 97, "setns": 268, "kexec_load": 104, "kexec_file_load": 294, "init_module": 105,
    "finit_module": 273, "delete_module": 106, "acct": 89, "swapon": 224, "swapoff": 225, "reboot": 142,
    "syslog": 116, "open_by_handle_at": 265, "name_to_handle_at": 264, "fsopen": 430, "fsconfig": 431,
    "fsmount": 432, "fspick": 433, "move_mount": 429, "open_tree": 428, "mount_setattr": 442,
    "quotactl": 60, "quotactl_fd": 443, "vhangup": 58, "lookup_dcookie": 18,
    "personality": 92, "socket": 198, "clone": 220, "clone3": 435, "ioctl": 29,
}
ARCHES = {
    "x86_64": (0xC000003E, _X86_64),
    "aarch64": (0xC00000B7, _AARCH64),
}
_X32_SYSCALL_BIT = 0x40000000

# Denied outright with EPERM (the Flatpak list, trimmed to what a snippet could abuse).
DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register", "mount",
    "umount2", "pivot_root", "unshare", "setns", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "acct", "swapon", "swapoff", "reboot", "syslog", "open_by_handle_at",
    "name_to_handle_at", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount", "open_tree",
    "mount_setattr", "quotactl", "quotactl_fd", "vhangup", "lookup_dcookie", "uselib",
)

AF_UNIX = 1
# Every namespace flag: a snippet must not build itself a new user (or any) namespace.
_CLONE_NAMESPACES = 0x02000000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000 | 0x40000000 | 0x00020000 | 0x00000080
_TIOCSTI = 0x5412
_TIOCLINUX = 0x541C
# personality(2) may read the persona (0xffffffff) or keep PER_LINUX; anything else (READ_IMPLIES_EXEC,
# ADDR_NO_RANDOMIZE) weakens the process and is refused.
_PER_LINUX = 0
_PER_QUERY = 0xFFFFFFFF


def machine() -> str:
    return os.uname().machine.lower()


def supported() -> bool:
    """True when this CPU has a syscall table here (x86_64, aarch64) and the kernel has seccomp."""
    return machine() in ARCHES and os.path.exists("/proc/self/status") and _kernel_has_seccomp()


def _kernel_has_seccomp() -> bool:
    try:
        with open("/proc/self/status", "rb") as handle:
            return b"\nSeccomp:" in handle.read()
    except OSError:
        return False


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(*, network: bool = False, arch: str | None = None) -> bytes:
    """The filter as raw ``struct sock_filter`` bytes, ready for ``bwrap --seccomp`` or :func:`load`."""
    arch = arch or machine()
    if arch not in ARCHES:
        raise OSError(f"no seccomp syscall table for {arch}")
    audit_arch, numbers = ARCHES[arch]
    errno_of = lambda code: _RET_ERRNO | code  # noqa: E731 - reads better inline below
    prog = [
        # Another ABI (i386 via int 0x80, x32) would bypass every number below: kill it.
        _insn(_LD_W_ABS, 0, 0, _ARCH),
        _insn(_JEQ_K, 1, 0, audit_arch),
        _insn(_RET_K, 0, 0, _RET_KILL_PROCESS),
        _insn(_LD_W_ABS, 0, 0, _NR),
    ]
    if arch == "x86_64":
        prog += [_insn(_JGE_K, 0, 1, _X32_SYSCALL_BIT), _insn(_RET_K, 0, 0, errno_of(errno.ENOSYS))]
    for name in DENIED:
        if name in numbers:
            prog += [_insn(_JEQ_K, 0, 1, numbers[name]), _insn(_RET_K, 0, 0, errno_of(errno.EPERM))]
    # clone3 passes its flags in memory BPF cannot read: say it does not exist, libc falls back to clone.
    prog += [_insn(_JEQ_K, 0, 1, numbers["clone3"]), _insn(_RET_K, 0, 0, errno_of(errno.ENOSYS))]
    # Each argument check loads an argument, tests it, and reloads the syscall number for the next rule.
    prog += [
        _insn(_JEQ_K, 0, 4, numbers["clone"]),
        _insn(_LD_W_ABS, 0, 0, _arg_low(0)),
        _insn(_JSET_K, 0, 1, _CLONE_NAMESPACES),
        _insn(_RET_K, 0, 0, errno_of(errno.EPERM)),
        _insn(_LD_W_ABS, 0, 0, _NR),
    ]
    prog += [
        _insn(_JEQ_K, 0, 5, numbers["ioctl"]),
        _insn(_LD_W_ABS, 0, 0, _arg_low(1)),
        _insn(_JEQ_K, 1, 0, _TIOCSTI),
        _insn(_JEQ_K, 0, 1, _TIOCLINUX),
        _insn(_RET_K, 0, 0, errno_of(errno.EPERM)),
        _insn(_LD_W_ABS, 0, 0, _NR),
    ]
    prog += [
        _insn(_JEQ_K, 0, 5, numbers["personality"]),
        _insn(_LD_W_ABS, 0, 0, _arg_low(0)),
        _insn(_JEQ_K, 2, 0, _PER_LINUX),
        _insn(_JEQ_K, 1, 0, _PER_QUERY),
        _insn(_RET_K, 0, 0, errno_of(errno.EPERM)),
        _insn(_LD_W_ABS, 0, 0, _NR),
    ]
    if not network:
        prog += [
            _insn(_JEQ_K, 0, 3, numbers["socket"]),
            _insn(_LD_W_ABS, 0, 0, _arg_low(0)),
            _insn(_JEQ_K, 1, 0, AF_UNIX),
            _insn(_RET_K, 0, 0, errno_of(errno.EAFNOSUPPORT)),
        ]
    prog.append(_insn(_RET_K, 0, 0, _RET_ALLOW))
    return b"".join(prog)


_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


def load(program: bytes) -> None:
    """Install ``program`` on the calling process (and whatever it execs). Sets no_new_privs first."""
    import ctypes

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    libc = ctypes.CDLL(None, use_errno=True)
    buffer = ctypes.create_string_buffer(program, len(program))
    prog = SockFprog(len(program) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
