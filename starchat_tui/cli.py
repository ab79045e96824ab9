"""The command line: a thin skin over the Python API.

Subcommands live with the part of the app they drive and are imported only when named, so
``starchat-tui --help`` stays fast and never imports torch, transformers or textual.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import stat
import sys
from collections.abc import Sequence
from typing import Any

from . import __version__
from .errors import EXIT_CODES_HELP, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, StarchatError, UsageError

# name -> (module with `main(argv, debug=False) -> int`, one-line help). Each module parses its own flags.
COMMANDS: dict[str, tuple[str, str]] = {
    "review": ("starchat_tui.cli", "review files (or - for stdin) and print the review"),
    "paths": ("starchat_tui.cli", "print the folders starchat-tui reads and writes"),
    "history": ("starchat_tui.store.command", "list, show, search, export, import and remove saved sessions"),
    "run": ("starchat_tui.sandbox.command", "run a snippet in the sandbox and print its output"),
    "doctor": ("starchat_tui.doctor", "show the sandbox backend, the device and why they were chosen"),
    "train": ("starchat_tui.training.command", "fine-tune a model on dialogues (needs the train extra)"),
    "demo": ("starchat_tui.demo.command", "build the offline demo model if needed, then chat with it"),
    "eval": ("starchat_tui.eval.command", "measure a model: pass@k on coding tasks in the sandbox, or a pairwise judge"),
}

DESCRIPTION = """\
A local-first coding assistant for the terminal, on StarChat, StarCoder or any chat model.

  starchat-tui                      open the chat app (the demo model unless -m is given)
  starchat-tui -p "question"        print one answer to stdout, for scripts
  cat x.py | starchat-tui -p "explain this"
  starchat-tui review x.py y.py     review files
"""


def _epilog() -> str:
    lines = ["commands:"]
    lines += [f"  {name:<10} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    lines += [
        "",
        "settings come from flags, then STARCHAT_TUI_* variables (STARCHAT_TUI_MODEL, ...), then",
        "config.toml in the config folder (see `starchat-tui paths`), then defaults.",
        "",
        EXIT_CODES_HELP,
    ]
    return "\n".join(lines)


def add_model_flags(parser: argparse.ArgumentParser) -> None:
    """Flags that choose and drive the model; shared by every command that generates."""
    group = parser.add_argument_group("model")
    group.add_argument("-m", "--model", help="a Hub id or a local folder (default: the offline demo model)")
    group.add_argument("-s", "--system", help="the system message")
    group.add_argument(
        "-o", "--option", action="append", default=[], metavar="KEY=VALUE",
        help="a generation setting, repeatable: -o temperature=0 -o max_new_tokens=200",
    )
    group.add_argument("--device", help="auto (default), cpu, cuda, cuda:1, mps")
    group.add_argument("--dtype", help="auto (default), float32, bfloat16, float16")
    group.add_argument("--quantize", choices=["8bit", "4bit"], help="load weights quantised (needs bitsandbytes and CUDA)")
    group.add_argument("--trust-remote-code", action="store_true", default=None, help="run code shipped with the model")
    group.add_argument("--dry-run", action="store_true", help="print the exact prompt the model would see, then exit")
    group.add_argument("--debug", action="store_true", help="show tracebacks")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="starchat-tui", description=DESCRIPTION, epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("prompt", nargs="*", help="the first message (joined with spaces)")
    parser.add_argument("-p", "--print", action="store_true", help="print the answer to stdout and exit")
    parser.add_argument("--json", action="store_true", help="with -p: print one JSON object with the reply and stats")
    parser.add_argument("--plain", action="store_true", help="a line-mode prompt instead of the full-screen app")
    sessions = parser.add_mutually_exclusive_group()
    sessions.add_argument("-c", "--continue", dest="continue_last", action="store_true", help="continue the last session")
    sessions.add_argument("--session", metavar="ID", help="continue the session with this ID (or an ID prefix)")
    parser.add_argument("--version", action="version", version=f"starchat-tui {__version__}")
    add_model_flags(parser)
    return parser


def settings_from_args(args: argparse.Namespace):
    from .config import load_settings, parse_options

    flags: dict[str, Any] = {
        "model": args.model,
        "system": args.system,
        "device": args.device,
        "dtype": args.dtype,
        "quantize": args.quantize,
        "trust_remote_code": args.trust_remote_code,
        "generation": parse_options(args.option),
    }
    return load_settings(flags)


# ---------------------------------------------------------------------------------------------------
# Input


def stdin_is_piped() -> bool:
    """True when stdin is a pipe or a file; a terminal or /dev/null is not input."""
    try:
        mode = os.fstat(sys.stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


def read_stdin_attachment():
    from .chat.attachments import decode_input

    from .chat.attachments import EmptyInput

    try:
        return decode_input(sys.stdin.buffer.read(), "stdin")
    except EmptyInput:
        raise UsageError("stdin is an empty pipe: there is nothing to attach (use </dev/null when no input is meant)") from None
    except ValueError as error:
        raise UsageError(str(error)) from None


def read_attachments(paths: Sequence[str]):
    from .chat.attachments import decode_input
    from .files import read_bytes

    attachments = []
    for path in paths:
        if path == "-":
            attachments.append(read_stdin_attachment())
            continue
        try:
            attachments.append(decode_input(read_bytes(path, folder_hint="name the files to review"), path))
        except ValueError as error:
            raise UsageError(str(error)) from None
    return attachments


def warn(message: str) -> None:
    print(f"starchat-tui: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------------
# Print mode


def answer(settings, instruction: str, attachments: list, *, as_json: bool, dry_run: bool) -> int:
    """Ask one question and print the answer: the engine behind -p and review."""
    from .chat.conversation import Conversation
    from .chat.inert import make_inert
    from .engine.generation import resolve_generation_options
    from .engine.render import fit_attachments

    options = resolve_generation_options(settings.generation)
    conversation = Conversation(system=settings.system)

    if dry_run:
        from .engine.loading import load_prompt_renderer

        renderer = load_prompt_renderer(settings.model, trust_remote_code=settings.trust_remote_code)
    else:
        from .engine import load_engine

        engine = load_engine(
            settings.model, device=settings.device, dtype=settings.dtype, quantize=settings.quantize,
            trust_remote_code=settings.trust_remote_code, progress=warn,
        )
        renderer = engine.renderer

    content, cuts = fit_attachments(renderer, conversation, instruction, attachments, options["max_new_tokens"])
    for cut in cuts:
        warn(cut)
    conversation.add("user", content)

    if dry_run:
        sys.stdout.write(renderer.render_prompt(conversation.messages))
        sys.stdout.flush()
        return EXIT_OK

    out = sys.stdout
    interrupted = False
    try:
        for text in engine.stream(conversation, **options):
            if not as_json:
                out.write(make_inert(text))
                out.flush()
    except KeyboardInterrupt:
        engine.cancel()
        interrupted = True
    for line in engine.warnings:
        warn(line)
    reply = conversation.messages[-1] if conversation.messages[-1]["role"] == "assistant" else None
    if as_json:
        json.dump(
            {
                "model": settings.model,
                "reply": reply["content"] if reply else "",
                "interrupted": bool(reply and reply.get("interrupted")) or interrupted,
                "stats": engine.stats.as_dict(),
                "messages": conversation.messages,
            },
            out,
            ensure_ascii=False,
        )
        out.write("\n")
    elif reply and not reply["content"].endswith("\n"):
        out.write("\n")
    out.flush()
    return EXIT_INTERRUPTED if interrupted else EXIT_OK


def main_prompt(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    instruction = " ".join(args.prompt)
    attachments = [read_stdin_attachment()] if stdin_is_piped() else []
    if args.print or args.dry_run:
        if not instruction and not attachments:
            raise UsageError('nothing to ask: give a prompt (starchat-tui -p "question") or pipe input in')
        return answer(settings, instruction, attachments, as_json=args.json, dry_run=args.dry_run)
    if args.json:
        raise UsageError("--json goes with -p/--print")
    return open_interactive(settings, instruction, attachments, args)


def open_interactive(settings, instruction: str, attachments: list, args: argparse.Namespace) -> int:
    """The full-screen app, or line mode with --plain; both reopen the terminal after a drained pipe."""
    if not sys.stdout.isatty():
        raise UsageError("no terminal to open the chat in: use -p to print an answer instead")
    overrides = [name for name in ("model", "system") if getattr(args, name)]
    if args.option:
        overrides.append("generation")
    if args.plain:
        from .line.chat import run_line_mode

        return run_line_mode(settings, instruction, attachments, args.session, continue_last=args.continue_last,
                             overrides=overrides)
    from .ui.launch import run_app

    return run_app(settings, instruction, attachments, session_id=args.session, continue_last=args.continue_last,
                   overrides=overrides)


# ---------------------------------------------------------------------------------------------------
# Subcommands that live here

REVIEW_INSTRUCTION = (
    "Review the following code. Point out bugs, security problems and unclear parts, most important first, "
    "and suggest concrete fixes."
)


def review(argv: Sequence[str], debug: bool = False) -> int:
    parser = argparse.ArgumentParser(
        prog="starchat-tui review", description="Ask the model for a code review of FILES and print it.",
        epilog=EXIT_CODES_HELP,
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="files to review; - reads stdin")
    parser.add_argument("--prompt", help="the instruction to use instead of the default review request")
    parser.add_argument("--json", action="store_true", help="print one JSON object with the reply and stats")
    add_model_flags(parser)
    args = parser.parse_args(argv)
    settings = settings_from_args(args)
    attachments = read_attachments(args.files)
    return answer(settings, args.prompt or REVIEW_INSTRUCTION, attachments, as_json=args.json, dry_run=args.dry_run)


def paths(argv: Sequence[str], debug: bool = False) -> int:
    argparse.ArgumentParser(prog="starchat-tui paths", description="Print the folders starchat-tui uses.").parse_args(argv)
    from . import config

    hf_home = os.environ.get("HF_HOME") or os.path.join(os.path.expanduser("~"), ".cache", "huggingface")
    for label, path in (
        ("config", config.config_dir()),
        ("config file", config.config_file()),
        ("data", config.data_dir()),
        ("cache", config.cache_dir()),
        ("hf cache", os.environ.get("HF_HUB_CACHE") or os.path.join(hf_home, "hub")),
    ):
        print(f"{label:<12} {path}")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------------


def run_command(name: str, argv: list[str], debug: bool) -> int:
    module_name, _ = COMMANDS[name]
    module = importlib.import_module(module_name)
    handler = getattr(module, name) if module_name == __name__ else module.main
    return handler(argv, debug=debug)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("STARCHAT_TUI_DEBUG") == "1"
    try:
        if argv and argv[0] in COMMANDS:
            return run_command(argv[0], argv[1:], debug)
        return main_prompt(build_parser().parse_args(argv))
    except StarchatError as error:
        if debug:
            raise
        warn(f"error: {error}")
        return error.exit_code
    except KeyboardInterrupt:
        if debug:
            raise
        warn("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`| head`): not an error of ours, and nothing left to say.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as error:  # our bug: say so in one line, traceback only with --debug
        if debug:
            raise
        warn(f"internal error: {type(error).__name__}: {error} (rerun with --debug for the traceback)")
        return EXIT_INTERNAL
