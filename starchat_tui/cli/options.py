"""What every command shares: the one stderr printer, the one-line parser, ``--debug`` and the model flags.

Importing this module is cheap (argparse and sys): it is loaded for ``starchat-tui --help``.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..config import QUANTIZE_CHOICES
from ..errors import UsageError


def say(message: str, *, command: str | None = None, alarm: bool = False) -> None:
    """Tell the user something on stderr, as ``starchat-tui[ COMMAND]: message``; stdout is for results.

    ``alarm`` colours the line red on a terminal (unless NO_COLOR is set): for what must not be missed.
    """
    line = f"starchat-tui{' ' + command if command else ''}: {message}"
    if alarm and sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        line = f"\x1b[1;31m{line}\x1b[0m"
    print(line, file=sys.stderr, flush=True)


class Parser(argparse.ArgumentParser):
    """argparse, but a mistake is one line naming the fix (exit 2), like every other error."""

    def error(self, message: str) -> None:  # type: ignore[override]
        # say() already names starchat-tui; the subcommand is worth naming again.
        command = self.prog.removeprefix("starchat-tui").strip()
        raise UsageError(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def debug_flag() -> argparse.ArgumentParser:
    """The parent parser that declares ``--debug`` for every command, at any depth.

    SUPPRESS as the default: a nested subcommand's parser would otherwise reset a ``--debug`` given
    before its name; ``main`` reads the flag once, with getattr.
    """
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
    return parent


def add_model_flags(parser: argparse.ArgumentParser, *, dry_run: bool = True) -> None:
    """Flags that choose and drive the model; every command that loads one takes all of them."""
    group = parser.add_argument_group("model")
    group.add_argument(
        "-m", "--model",
        help="a Hub id, a local folder, a server (http://HOST:PORT/v1, or URL#MODEL to pick one of its models) or an "
             "endpoint named in config.toml (default: the offline demo model)",
    )
    group.add_argument("-s", "--system", help="the system message")
    group.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a generation setting, repeatable: -o temperature=0 -o max_new_tokens=200",
    )
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    group.add_argument("--dtype", help="auto (default), float32, bfloat16, float16")
    group.add_argument(
        "--quantize", choices=QUANTIZE_CHOICES,
        help="load weights quantised. int8: weight-only int8 on any device (optimum-quanto: pip install "
             "'starchat-tui[int8]'); on CPU about 1.9x float32's tokens/s on a 1B model, but some greedy answers differ "
             "from float32's, so it is never chosen for you. 8bit, 4bit: bitsandbytes, CUDA only",
    )
    group.add_argument(
        "--compile", action="store_true", default=None,
        help="decode through torch.compile with a static KV cache sized to the context (first answer waits for the "
             "compile; on CPU it has been slower than without, so it is off unless you ask)",
    )
    group.add_argument("--api", choices=["auto", "chat", "completions"],
                       help="with a server: chat lets it apply the model's template, completions sends our own "
                            "rendering (auto: completions for StarChat models)")
    group.add_argument("--trust-remote-code", action="store_true", default=None, help="run code shipped with the model")
    if dry_run:
        group.add_argument("--dry-run", action="store_true", help="print the exact prompt the model would see, then exit")


def add_print_flags(parser: argparse.ArgumentParser) -> None:
    """How print mode writes its answer: -p and review take these."""
    group = parser.add_argument_group("output")
    group.add_argument("--format", choices=["text", "json", "jsonl"],
                       help="text (default): the answer as it streams; json: one object with the reply and stats "
                            "at the end; jsonl: one JSON event a line (start, delta, end, warning, error)")
    group.add_argument("--json", action="store_true", help="short for --format json")
    group.add_argument("--output", metavar="FILE",
                       help="also write the whole answer to FILE (not when interrupted); an existing FILE is refused")
    group.add_argument("--force", action="store_true", help="with --output: replace FILE if it exists")


def settings_from_args(args: argparse.Namespace):
    """The settings the model flags ask for, over STARCHAT_TUI_* variables, config.toml and the defaults."""
    from ..config import load_settings, parse_options

    flags: dict[str, Any] = {
        "model": args.model,
        "system": args.system,
        "device": args.device,
        "dtype": args.dtype,
        "quantize": args.quantize,
        "trust_remote_code": args.trust_remote_code,
        "compile": args.compile,
        "api": args.api,
        "generation": parse_options(args.option),
    }
    return load_settings(flags)


def load_model(settings: Any, model: str | None = None, progress=say):
    """Load ``model`` (default: the settings' model) as the settings say, or connect to the server it names;
    "demo" is found or built first."""
    from .. import load_engine

    return load_engine(
        model or settings.model, device=settings.device, dtype=settings.dtype, quantize=settings.quantize,
        trust_remote_code=settings.trust_remote_code, compile=settings.compile, progress=progress,
        endpoints=settings.section("endpoints"),
        api=settings.api,
    )
