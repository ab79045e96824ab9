# Hostile: 100 MB of output.
import sys

chunk = b"x" * (1024 * 1024)
for _ in range(100):
    sys.stdout.buffer.write(chunk)
print("wrote 100 MB")
