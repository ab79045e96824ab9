# Hostile, bounded: fill /tmp and $TMPDIR (RAM-backed on many hosts) with 16 MiB files, up to 1 GiB.
import os

block = b"\0" * (16 * 1024**2)
for folder in dict.fromkeys(["/tmp", os.environ.get("TMPDIR", "/tmp")]):
    written = 0
    try:
        for index in range(64):
            with open(os.path.join(folder, f"@MARK@-fill-{index}"), "wb") as handle:
                handle.write(block)
            written += len(block)
        print(folder, "wrote", written // 1024**2, "MiB: NOT STOPPED")
    except OSError as error:
        print(folder, "stopped after", written // 1024**2, "MiB:", error)
