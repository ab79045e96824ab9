"""``starchat-tui demo``: build the offline demo model if it is not there yet, then chat with it."""

from __future__ import annotations

import argparse
import sys
from functools import partial

from ..errors import EXIT_OK, UsageError
from . import options
from .base import Command

DESCRIPTION = """\
Chat with starchat-tui's own demo model: no network, no GPU, no download.

The first run builds it in the cache folder (about 3 minutes on 2 CPU cores, with progress): a corpus
of generated coding dialogues whose every code block is run and checked, a tokenizer trained on it,
and a small GPTBigCode trained on it with starchat-tui's training package. The build ends by measuring
pass@1 on held-out tasks, templated ones and requests in everyday words. Later runs open it at once.

The demo model is tiny: it writes, fixes and explains small Python functions on numbers, lists and
strings, asked in everyday words, and declines the rest in one line. Its model card (README.md in its
folder) says what it is and how it scored.
"""

say = partial(options.say, command="demo")


class Demo(Command):
    name = "demo"
    help = "build the offline demo model if needed, then chat with it"
    description = DESCRIPTION

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("prompt", nargs="*", help="a first message to send")
        parser.add_argument("--build-only", action="store_true",
                            help="build (or find) the model and print its folder as the last line, then exit")
        parser.add_argument("--rebuild", action="store_true", help="build it again even if it exists")
        parser.add_argument("--plain", action="store_true", help="a line-mode prompt instead of the full-screen app")

    def run(self, args: argparse.Namespace) -> int:
        if not args.build_only and not sys.stdout.isatty():
            # Checked before a build of minutes, not after it.
            raise UsageError("no terminal to open the chat in: use --build-only to only build the model, "
                             "or starchat-tui -p \"question\" to print an answer")
        from ..config import load_settings
        from ..demo import DEMO_NOTE, demo_folder, demo_info, demo_model_path, describe_score
        from .interactive import open_chat

        existed = (demo_folder() / "config.json").exists() and not args.rebuild
        folder = demo_model_path(say, rebuild=args.rebuild)
        if existed:
            say(f"found the demo model in {folder}; {describe_score(demo_info(folder))}")
        if args.build_only:
            print(folder, flush=True)
            return EXIT_OK
        say(f"note: {DEMO_NOTE}")
        settings = load_settings({"model": str(folder)})
        return open_chat(settings, " ".join(args.prompt), [], plain=args.plain, overrides=["model"])
