# Hostile: write outside the work dir (persistence via a dotfile, the host's /tmp, the app's folders).
import json

for path in json.loads('@TARGETS@'):
    try:
        with open(path, "a") as handle:
            handle.write("LEAK\n")
        print(path, "WRITTEN")
    except OSError as error:
        print(path, "blocked:", error)
