# Hostile: kill the parent, the app, a process standing in for the TUI, and everything else it can reach.
import os
import signal

APP_PIDS = "@PIDS@"  # the test fills in "pid, pid"

for pid in [os.getppid(), *(int(pid) for pid in APP_PIDS.split(","))]:
    try:
        os.kill(pid, signal.SIGKILL)
        print("killed", pid)
    except OSError as error:
        print("blocked", pid, error)
try:
    os.kill(-1, signal.SIGKILL)
except OSError as error:
    print("kill(-1) blocked", error)
print("still here")
