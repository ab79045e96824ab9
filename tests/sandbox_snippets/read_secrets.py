# Hostile: read a secret planted in the app user's home, system secrets, and secrets in any environment.
import glob
import os

for path in ["@SECRET_FILE@", "/etc/shadow", "@HOME@/.ssh/id_rsa"]:
    try:
        with open(path) as handle:
            print(path, "READ:", handle.read())
    except OSError as error:
        print(path, "blocked:", error)
print("env:", dict(os.environ))
for path in glob.glob("/proc/*/environ"):
    try:
        with open(path, "rb") as handle:
            print(path, handle.read())
    except OSError:
        pass
