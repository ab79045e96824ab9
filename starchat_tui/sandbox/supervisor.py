"""The per-run supervisor: one small process between the app and a snippet, forked fresh for each run.

Starting a Python interpreter costs more than the sandbox itself, so the app starts this file once, as
``python -I -S supervisor.py --zygote FD``: a single-threaded *zygote* that has done its imports and
only forks. For every run the app sends it the run's spec (marshal) with four file descriptors over a
unix socket: the snippet's stdout and stderr pipes, a status pipe, and the read end of a *lifeline*
pipe whose write end only the app holds. The zygote forks a supervisor for the run and forgets it.

The supervisor

- becomes a child subreaper, so every process the snippet starts, daemons that double-fork and
  ``setsid`` included, stays its descendant; the zombies bubblewrap leaves are reaped here, not by
  PID 1 (which in containers often never reaps, until RLIMIT_NPROC runs out);
- forks the child that sets the rlimits, drops to the sandbox uid, applies Landlock and seccomp when
  the backend wants them, and execs bubblewrap or the interpreter;
- enforces the wall-clock timeout and watches the run's total memory and disk use;
- stops the run when the lifeline breaks: the app closed it (cancel, output cap) or the app died,
  however it died; so nothing outlives the app;
- in every case kills every descendant, reaps them all, writes one status record and exits.

Cheap imports only (``_signal`` rather than ``signal``, which pulls in enum; marshal, not json), and
no relative imports: landlock.py and seccomp.py are loaded from this folder as plain modules. The app
itself never becomes a subreaper: a sweep there would kill the app's other children.
"""

import _signal
import marshal
import os
import sys
import time

SIGTERM, SIGKILL, SIGCHLD = _signal.SIGTERM, _signal.SIGKILL, _signal.SIGCHLD
_PR_SET_PDEATHSIG = 1
_PR_GET_DUMPABLE = 3
_PR_SET_CHILD_SUBREAPER = 36
_TICK = 0.1
_LINUX = sys.platform.startswith("linux")

_libc = None


def prctl(option, value):
    global _libc
    if _libc is None:
        import ctypes

        _libc = ctypes.CDLL(None, use_errno=True)
    return _libc.prctl(option, value, 0, 0, 0)


# --------------------------------------------------------------------------------------------------
# The process tree, read from /proc


def process_table():
    """{parent pid: [child pids]} for every process we can see."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            fd = os.open("/proc/" + name + "/stat", os.O_RDONLY)
            try:
                data = os.read(fd, 512)
            finally:
                os.close(fd)
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
            ppid = int(data[data.rindex(b")") + 2:].split(None, 2)[1])
        except (OSError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(name))
    return children


def descendants(root):
    table = process_table()
    found, stack = [], [root]
    while stack:
        for child in table.get(stack.pop(), ()):
            found.append(child)
            stack.append(child)
    return found


def resident_bytes(pids):
    total = 0
    page = os.sysconf("SC_PAGE_SIZE")
    for pid in pids:
        try:
            fd = os.open(f"/proc/{pid}/statm", os.O_RDONLY)
            try:
                total += int(os.read(fd, 128).split()[1]) * page
            finally:
                os.close(fd)
        except (OSError, ValueError, IndexError):
            pass
    return total


def tasks_of(uid):
    """Processes and threads owned by ``uid``: RLIMIT_NPROC counts all of them, in every namespace."""
    count = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid == uid:
                count += max(1, os.stat("/proc/" + name + "/task").st_nlink - 2)
        except OSError:
            pass
    return count


def disk_usage(paths, stop_at):
    """Bytes used under ``paths`` (symlinks not followed); stops counting once past ``stop_at``."""
    total, stack = 0, list(paths)
    while stack and total <= stop_at:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += max(info.st_blocks * 512, 4096)
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


# --------------------------------------------------------------------------------------------------
# The child: limits, uid, Landlock, seccomp, exec


def set_limit(resource, which, value):
    soft, hard = resource.getrlimit(which)
    # Never try to raise a limit: inside containers the hard limit is often lower than ours.
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    try:
        resource.setrlimit(which, (value, value))
    except (OSError, ValueError):
        if _LINUX:
            raise
        # macOS refuses some (RLIMIT_AS); there the app already warns that nothing is sandboxed.


def child(spec, supervisor, ruleset, seccomp_fd, bwrap_status_fd):
    import resource

    # Python ignores SIGPIPE and SIGXFSZ, and the zygote ignores SIGCHLD; an ignored signal stays ignored
    # across exec, so undo that (`yes | head` must end with SIGPIPE, RLIMIT_FSIZE must stop the writer).
    for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ", "SIGCHLD", "SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(_signal, name):
            _signal.signal(getattr(_signal, name), _signal.SIG_DFL)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.chdir(spec["cwd"])
    for which, value in spec["rlimits"]:
        set_limit(resource, which, value)
    if spec.get("nproc") is not None and hasattr(resource, "RLIMIT_NPROC"):
        set_limit(resource, resource.RLIMIT_NPROC, tasks_of(spec["count_uid"]) + spec["nproc"])
    if spec.get("views"):
        import mounts

        mounts.apply(spec["views"])
    if spec.get("uid") is not None:
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    if _LINUX:
        # After the uid change, which clears it; covers the gap before bwrap's own --die-with-parent.
        prctl(_PR_SET_PDEATHSIG, SIGKILL)
        if os.getppid() != supervisor:
            os._exit(137)
    else:
        os.setpgid(0, 0)
    argv = list(spec["command"])
    if spec.get("views") and not os.access(argv[0], os.X_OK):
        # A folder inside the interpreter's own tree that the sandbox uid cannot enter: say which program.
        raise PermissionError(f"uid {os.getuid()} cannot run {argv[0]} even through the mount view; install bubblewrap")
    if spec["backend"] == "bwrap":
        extra = []
        if seccomp_fd is not None:
            os.set_inheritable(seccomp_fd, True)
            extra += ["--seccomp", str(seccomp_fd)]
        os.set_inheritable(bwrap_status_fd, True)
        extra += ["--json-status-fd", str(bwrap_status_fd)]
        argv = list(spec["bwrap"]) + extra + ["--"] + argv
    else:
        if ruleset is not None:
            ruleset.restrict()
        if spec.get("seccomp"):
            import seccomp

            seccomp.load(spec["seccomp"])
    os.execve(argv[0], argv, spec["env"])


# --------------------------------------------------------------------------------------------------
# One run


class Waker:
    """Turns SIGCHLD and SIGTERM into readable bytes on a pipe, so one poll() waits for everything."""

    def __init__(self):
        import select

        self.read, write = os.pipe()
        os.set_blocking(self.read, False)
        os.set_blocking(write, False)
        self.terminated = False
        _signal.set_wakeup_fd(write)
        _signal.signal(SIGCHLD, lambda signum, frame: None)
        _signal.signal(SIGTERM, self._terminate)
        self.poll = select.poll()
        self.poll.register(self.read, select.POLLIN)
        self.events = select

    def _terminate(self, signum, frame):
        self.terminated = True

    def watch(self, fd):
        self.poll.register(fd, self.events.POLLIN | self.events.POLLHUP)

    def forget(self, fd):
        self.poll.unregister(fd)

    def wait(self, seconds):
        """The watched fds (other than our own pipe) that became ready within ``seconds``."""
        ready = self.poll.poll(max(0, int(seconds * 1000)))
        fds = []
        for fd, _ in ready:
            if fd == self.read:
                try:
                    os.read(self.read, 512)
                except BlockingIOError:
                    pass
            else:
                fds.append(fd)
        return fds


def reap(child_pid, state):
    """Collect every exited child; remember the snippet's own status. False once there are none."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return False
        if pid == 0:
            return True
        if pid == child_pid:
            state["status"] = status


def sweep(me, child_pid, state, waker):
    """Kill everything below us and reap it; gives up after 5 s rather than hang the app."""
    if not _LINUX:  # no /proc to walk: the snippet's process group is the best we have
        try:
            os.killpg(child_pid, SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        pids = descendants(me)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, SIGKILL)
            except OSError:
                pass
        if reap(child_pid, state):
            waker.wait(0.01)  # woken by the next SIGCHLD, usually at once
    reap(child_pid, state)


def exit_code(status):
    if status is None:
        return None
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def supervise(spec, lifeline):
    me = os.getpid()
    waker = Waker()
    waker.watch(lifeline)
    if _LINUX:
        prctl(_PR_SET_CHILD_SUBREAPER, 1)

    ruleset = None
    if spec["backend"] == "landlock":
        import landlock

        ruleset = landlock.Ruleset(spec["landlock_abi"], network=spec["network"])
        for path in spec["read"]:
            ruleset.allow_read(path)
        for path in spec["write"]:
            ruleset.allow_write(path)
        for path, rights in spec.get("files", ()):
            ruleset.allow(path, rights)

    seccomp_r = bwrap_status = None
    if spec["backend"] == "bwrap":
        if spec.get("seccomp"):
            seccomp_r, seccomp_w = os.pipe()
            os.write(seccomp_w, spec["seccomp"])
            os.close(seccomp_w)
        bwrap_status = os.pipe()
    errors_r, errors_w = os.pipe()

    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(errors_r)
            child(spec, me, ruleset, seccomp_r, bwrap_status[1] if bwrap_status else None)
        except BaseException as error:  # noqa: BLE001 - report anything, then die
            message = f"{type(error).__name__}: {error}"
            try:
                os.write(errors_w, message.encode("utf-8", "replace")[:4000])
            finally:
                os._exit(127)
    os.close(errors_w)
    for fd in (seccomp_r, bwrap_status[1] if bwrap_status else None):
        if fd is not None:
            os.close(fd)

    state = {"status": None}
    stopped = None
    deadline = started + spec["timeout"]
    next_watch = started + _TICK
    next_disk = started + _TICK
    peak = 0
    while True:
        if not reap(pid, state) or state["status"] is not None:
            break
        now = time.monotonic()
        if now >= deadline:
            stopped = "timeout"
            break
        if waker.terminated:
            stopped = "cancelled"
            break
        if now >= next_watch:
            # A fork bomb's stream of SIGCHLDs must not starve these checks, hence a schedule, not idle ticks.
            next_watch = now + _TICK
            if _LINUX and spec.get("memory"):
                used = resident_bytes(descendants(me))
                peak = max(peak, used)
                if used > spec["memory"]:
                    stopped = "memory"
                    break
            if spec.get("disk_paths") and now >= next_disk:
                used = disk_usage(spec["disk_paths"], spec["disk_limit"])
                # A big work dir is slow to walk: never spend more than a tenth of the time walking it.
                next_disk = time.monotonic() + max(_TICK, 10 * (time.monotonic() - now))
                if used > spec["disk_limit"]:
                    stopped = "disk"
                    break
        if waker.wait(min(next_watch, deadline) - now):
            stopped = "cancelled"  # the lifeline broke: the app cancelled, or it is gone
            break
    waker.forget(lifeline)
    sweep(me, pid, state, waker)

    result = {"code": exit_code(state["status"]), "stopped": stopped, "peak": peak}
    error = os.read(errors_r, 4096)
    if error:
        result["error"] = error.decode("utf-8", "replace")
    if bwrap_status:
        report = b""
        while True:
            chunk = os.read(bwrap_status[0], 4096)
            if not chunk:
                break
            report += chunk
        if b"child-pid" not in report and stopped is None:
            result["setup_failed"] = True
    return result


def run_one(message, fds):
    """In the fork for one run: become its supervisor, report, exit."""
    stdout_w, stderr_w, status_w, lifeline = fds
    os.setsid()
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.close(stdout_w)
    os.close(stderr_w)
    try:
        result = supervise(marshal.loads(message), lifeline)
    except BaseException as error:  # noqa: BLE001 - the app must hear about it, not see a traceback
        result = {"code": None, "stopped": None, "error": f"supervisor: {type(error).__name__}: {error}"}
    try:
        os.write(status_w, marshal.dumps(result))
    finally:
        os._exit(0)


# --------------------------------------------------------------------------------------------------
# The zygote


def read_exact(sock, size, data=b""):
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def reply(sock, value):
    data = marshal.dumps(value)
    sock.sendall(len(data).to_bytes(4, "big") + data)


def serve(sock_fd):
    """Fork a supervisor per request until the app closes the socket (or dies)."""
    import select  # noqa: F401 - imported once here, used by every supervisor
    import socket

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    if _LINUX:
        prctl(_PR_GET_DUMPABLE, 0)  # a harmless call that loads ctypes and libc now, not in every run
        import resource  # noqa: F401

        import landlock  # noqa: F401
        import mounts  # noqa: F401
        import seccomp  # noqa: F401

    sock = socket.socket(fileno=sock_fd)
    # Supervisors are not ours to wait for: let the kernel reap them.
    _signal.signal(SIGCHLD, _signal.SIG_IGN)
    while True:
        # A request: 4 bytes of length carrying the file descriptors, then the marshalled spec.
        try:
            header, fds, _flags, _addr = socket.recv_fds(sock, 4, 4)
            if not header:
                return
            size = int.from_bytes(read_exact(sock, 4, header), "big")
            message = read_exact(sock, size)
        except (OSError, EOFError):
            return
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            reply(sock, "expected 4 file descriptors")
            continue
        pid = os.fork()
        if pid == 0:
            sock.close()
            run_one(message, fds)
        for fd in fds:
            os.close(fd)
        reply(sock, pid)


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--zygote":
        serve(int(sys.argv[2]))
    else:
        sys.stderr.write("usage: supervisor.py --zygote FD (started by starchat-tui, not by hand)\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
