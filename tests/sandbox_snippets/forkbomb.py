# Hostile, bounded: fork up to 300 children that each linger; the process limit must stop it well before.
import os
import time

count = 0
for _ in range(300):
    try:
        pid = os.fork()
    except OSError as error:
        print("fork refused after", count, error)
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    count += 1
print("forked", count)
time.sleep(0.5)
