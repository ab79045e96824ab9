# Hostile, bounded: 4 processes, each under the per-process limit, together far over it (4 x 700 MiB).
import os
import time

for _ in range(4):
    if os.fork() == 0:
        blocks = []
        for _ in range(70):
            blocks.append(bytearray(10 * 1024**2))  # bytearray zero-fills: the pages are really used
            time.sleep(0.02)
        time.sleep(30)
        os._exit(0)
for _ in range(4):
    os.wait()
print("all children finished")
