"""``starchat-tui run``: run a snippet in the sandbox from the command line.

A thin skin over :func:`starchat_tui.sandbox.run`: the snippet's output streams to our stdout and
stderr (control characters made visible), notes about the run go to stderr, and the exit code is the
snippet's own, or 124 when it timed out.
"""

from __future__ import annotations

import argparse
import json
import sys

from ..errors import EXIT_CODES_HELP, EXIT_USAGE, UsageError
from ..files import read_text
from .base import Command
from .options import say

EPILOG = f"""\
The snippet runs in the best sandbox this machine has (see `starchat-tui doctor`): no network, no
access to your files beyond the work dir and what you --share, no environment secrets, a time limit,
capped output, and nothing left running afterwards. Plots (plt.show(), open figures) are saved as PNG
files in the work dir and listed on stderr.

exit status: the snippet's own, 124 if it timed out, 128+N if signal N killed it.
{EXIT_CODES_HELP}
"""


class Run(Command):
    name = "run"
    help = "run a snippet in the sandbox and print its output"
    description = "Run a code snippet in the sandbox and print its output."
    epilog = EPILOG

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE|-", help="the snippet; - reads it from stdin")
        add = parser.add_argument
        add("-l", "--lang", help="python, bash, sh, or one from [sandbox.languages] (default: from the file name, else python)")
        add("-t", "--timeout", type=float, help="seconds before the run is killed (default: [sandbox] timeout, else 10)")
        add("-w", "--workdir", help="an existing folder to run in, kept between runs (default: a fresh folder)")
        add("--share", action="append", default=[], metavar="PATH",
            help="make PATH visible read-only, at its own path (repeatable)")
        add("--network", action="store_true", help="let the snippet use the network")
        add("--unsafe", action="store_true", help="run even when no sandbox is available (the snippet gets your full rights)")
        add("--json", action="store_true", help="print one JSON object with the output and the facts of the run")

    def run(self, args: argparse.Namespace) -> int:
        return run_snippet(args)


def _read_snippet(path: str) -> str:
    return read_text(path, folder_hint="give the snippet file", encoding_hint="save the snippet as UTF-8")


def _confirm_unsafe(args: argparse.Namespace, reason: str) -> bool:
    """Never silently unsafe: say so in red, then require --unsafe or a yes typed at the terminal."""
    for line in (f"NO SANDBOX: {reason}", "the snippet would run with your full user rights (files, network, secrets)."):
        say(line, alarm=True)
    if args.unsafe:
        return True
    if args.file != "-" and sys.stdin.isatty() and sys.stderr.isatty():
        try:
            answer = input("Run it anyway, without a sandbox? [y/N] ")
        except EOFError:
            answer = ""
        return answer.strip().lower() in ("y", "yes")
    raise UsageError("not running it without a sandbox; pass --unsafe to run it anyway, or see `starchat-tui doctor`")


def run_snippet(args: argparse.Namespace) -> int:
    from ..chat.inert import make_inert
    from ..config import load_settings
    from ..sandbox import languages
    from ..sandbox.limits import Limits
    from ..sandbox.probe import probe_backend
    from ..sandbox.runner import run

    section = load_settings().section("sandbox")
    timeout = args.timeout if args.timeout is not None else section.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise UsageError(f"timeout must be a positive number of seconds, not {timeout!r}")
    language = args.lang or (languages.for_path(args.file, section) if args.file != "-" else None) or "python"
    languages.resolve(language, section)  # a bad --lang is a usage error before anything else happens
    code = _read_snippet(args.file)
    limits = Limits.from_config(section)

    info = probe_backend(section)
    if not info.safe and not _confirm_unsafe(args, info.reason):
        say("not run")
        return EXIT_USAGE

    def stream(name: str, text: str) -> None:
        target = sys.stdout if name == "stdout" else sys.stderr
        target.write(make_inert(text))
        target.flush()

    result = run(
        code, language, timeout=float(timeout), limits=limits, network=args.network, workdir=args.workdir,
        share=args.share, allow_unsafe=True, on_output=None if args.json else stream,
    )
    if args.json:
        json.dump(dict(result.as_dict(), sandbox=info.label), sys.stdout, ensure_ascii=False)
        sys.stdout.write("\n")
        sys.stdout.flush()
        return result.exit_code
    if result.stopped:
        say(result.stopped)
    if result.note:
        say(result.note)
    for image in result.images:
        say(f"image: {image}")
    return result.exit_code
