# Hostile: a daemon that tries to outlive the run (double fork + setsid), leaving a heartbeat file.
import os
import time

if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for beat in range(600):
            with open("heartbeat", "w") as handle:
                handle.write(str(beat))
            time.sleep(0.05)
        os._exit(0)
    os._exit(0)
time.sleep(0.3)
print("daemon started")
