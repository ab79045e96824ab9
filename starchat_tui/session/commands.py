"""The slash commands: one registry, one handler each, for every front-end.

A handler gets the front-end (:class:`~starchat_tui.session.front.Front`) and the rest of the line, changes
the chat through :class:`~starchat_tui.session.chat_session.ChatSession`, and talks to the user only
through the front. Help text and completion are generated from the registry, so a command added here is
in ``/help``, Tab completion and both front-ends at once.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..chat.blocks import CodeBlock, number_blocks
from ..chat.inert import make_inert
from ..errors import UsageError

if TYPE_CHECKING:
    from .front import Front

Handler = Callable[["Front", str], None]
SHOW_TOPICS = ("prompt", "params", "template", "session", "stats")


@dataclass(frozen=True)
class Command:
    name: str
    usage: str
    help: str
    handler: Handler
    takes_argument: bool = False
    choices: tuple[str, ...] = ()  # completions for the first argument, when fixed
    aliases: tuple[str, ...] = ()
    idle: bool = False  # refused while an answer streams: it changes the conversation under the answer


COMMANDS: dict[str, Command] = {}
ALIASES: dict[str, str] = {}


def command(name: str, usage: str, help: str, *, choices: tuple[str, ...] = (), aliases: tuple[str, ...] = (),
            idle: bool = False) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of ``/name``; it takes an argument when ``usage`` shows one."""

    def register(handler: Handler) -> Handler:
        COMMANDS[name] = Command(name, usage, help, handler, " " in usage, choices, aliases, idle)
        ALIASES.update(dict.fromkeys(aliases, name))
        return handler

    return register


def is_command(text: str) -> bool:
    """A message is a command when it starts with / and the first word is not a path like /usr/bin, or
    when it starts with ! (a shell command, the same as /shell)."""
    stripped = text.strip()
    if stripped.startswith("!"):
        return True
    if not stripped.startswith("/") or stripped.startswith("//"):
        return False
    word = stripped[1:].split(maxsplit=1)[0] if len(stripped) > 1 else ""
    return "/" not in word


def as_message(text: str) -> str:
    """The text to send for a line that is not a command: ``//x`` sends ``/x``."""
    return text[1:] if text.startswith("//") else text


def parse(text: str) -> tuple[Command, str]:
    """Split ``/name rest`` into the command and its argument text (``!rest`` is ``/shell rest``)."""
    if text.strip().startswith("!"):
        return COMMANDS["shell"], text.strip()[1:].strip()
    name, _, rest = text.strip()[1:].partition(" ")
    name = ALIASES.get(name.lower(), name.lower())
    found = COMMANDS.get(name)
    if found is None:
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"did you mean /{close[0]}?" if close else "type /help for the list"
        raise UsageError(f"unknown command /{name}: {hint} (start with // to send a message that begins with /)")
    if rest.strip() and not found.takes_argument:
        raise UsageError(f"/{found.name} takes no argument: {found.usage}")
    return found, rest.strip()


def execute(front: Front, text: str) -> None:
    """Run the slash command in ``text``; a user error is raised as UsageError for the front to show."""
    found, argument = parse(text)
    if found.idle and front.busy:
        raise UsageError(f"still answering: stop the answer first (Esc, or Ctrl+C), then /{found.name}")
    found.handler(front, argument)


def help_lines() -> list[str]:
    width = max(len(c.usage) for c in COMMANDS.values())
    lines = [f"{c.usage:<{width}}  {c.help}" for c in COMMANDS.values()]
    lines.append(f"{'//TEXT':<{width}}  send TEXT starting with / (a line like /usr/bin/x ... is sent as it is)")
    lines.append(f"{'!COMMAND':<{width}}  run COMMAND in your shell; its output goes with your next message")
    lines.append(f"{'@PATH':<{width}}  in a message: attach that file (Tab completes the path)")
    return lines


@dataclass(frozen=True)
class Completion:
    value: str  # the whole prompt text after completing
    label: str
    help: str


def complete(text: str, dynamic: Callable[[str], Iterable[str]] | None = None) -> list[Completion]:
    """Completions for a prompt that is a command being typed; [] when it is not one.

    ``dynamic(command_name)`` supplies argument choices that depend on the chat (block numbers, themes).
    A word starting with @ completes to a file's path, in a message or a command.
    """
    mention = _mention_at_end(text)
    if mention is not None:
        from .workspace import path_choices

        start = len(text) - len(mention)
        return [Completion(text[:start] + choice, choice, "attach this file") for choice in path_choices(Path.cwd(), mention)
                if choice != mention]
    if not text.startswith("/") or "\n" in text:
        return []
    head, space, rest = text[1:].partition(" ")
    if not space:
        return [
            Completion(f"/{c.name}" + (" " if c.takes_argument else ""), c.usage, c.help)
            for c in COMMANDS.values()
            if c.name.startswith(head.lower())
        ]
    found = COMMANDS.get(ALIASES.get(head.lower(), head.lower()))
    if found is not None and found.name == "add":  # every argument is a path: complete the last one
        from .workspace import path_choices

        word = "" if not rest or rest.endswith(" ") else rest.split()[-1]
        start = len(text) - len(word)
        return [Completion(text[:start] + choice, choice, found.help) for choice in path_choices(Path.cwd(), word)
                if choice != word]
    if found is None or " " in rest:
        return []
    choices = list(found.choices) + list(dynamic(found.name) if dynamic else ())
    return [
        Completion(f"/{found.name} {choice}", choice, found.help)
        for choice in dict.fromkeys(choices)
        if choice.startswith(rest) and choice != rest
    ]


def _mention_at_end(text: str) -> str | None:
    """The path typed so far after an @ that starts the last word; None when the last word is not one."""
    word = text.rsplit(None, 1)[-1] if text.strip() and not text[-1].isspace() else ""
    before = text[: len(text) - len(word)]
    return word[1:] if word.startswith("@") and (not before or before[-1].isspace()) else None


def dynamic_choices(front: Front, name: str) -> list[str]:
    """Argument completions that depend on the chat as it stands."""
    if name in ("copy", "save", "run", "apply"):
        return [str(b.number) for b in number_blocks(front.chat.messages)]
    if name == "drop":
        return [a.source for a in front.chat.attachments]
    if name == "theme":
        return sorted(front.theme_names())
    if name == "fork":
        return [str(n) for n, _ in front.chat.turns()]
    if name in ("set", "unset"):
        from ..engine.generation import DEFAULTS

        return sorted({*DEFAULTS, "do_sample", "repetition_penalty", "seed", *front.chat.options})
    return []


# -- helpers ---------------------------------------------------------------------------------------------


def _block(front: Front, number: int) -> CodeBlock:
    blocks = number_blocks(front.chat.messages)
    if not blocks:
        raise UsageError("there are no code blocks in this chat yet")
    if not 1 <= number <= len(blocks):
        raise UsageError(f"no code block {number}: this chat has blocks 1 to {len(blocks)}")
    return blocks[number - 1]


def _number(argument: str, usage: str) -> tuple[int, str]:
    head, _, rest = argument.partition(" ")
    if not head.isdigit():
        raise UsageError(f"expected a block number: {usage}")
    return int(head), rest.strip()


def _require_engine(front: Front, what: str):
    engine = front.engine
    if engine is None:
        raise UsageError(f"the model is not loaded yet: {what} depends on its tokenizer")
    return engine


# -- the commands, in the order /help lists them ---------------------------------------------------------


@command("help", "/help", "keys and commands", aliases=("?",))
def _help(front: Front, argument: str) -> None:
    front.show_help()


@command("model", "/model [NAME]", "switch to another model (a Hub id or a folder; no name: ask)", idle=True)
def _model(front: Front, argument: str) -> None:
    name = argument or (front.ask("Model to load (a Hub id or a folder)", front.chat.model) or "").strip()
    if name:
        front.switch_model(name)
        front.chat.set_model(name)


@command("system", "/system [TEXT]", "set this chat's system prompt (no text: edit it; 'off' removes it)",
         choices=("off",))
def _system(front: Front, argument: str) -> None:
    if argument:
        text: str | None = None if argument.lower() in ("none", "off", "-") else argument
    else:
        text = front.ask("System prompt for this chat (empty: none)", front.chat.system or "", multiline=True)
        if text is None:
            return
    front.chat.set_system(text.strip() if text else None)
    front.note(f"system prompt {'set' if front.chat.system else 'removed'} for this chat")


@command("set", "/set [KEY [VALUE]]", "set a generation setting for this chat (no value: back to default; "
         "nothing: show them)", choices=("temperature", "top_k", "top_p", "max_new_tokens", "repetition_penalty",
                                         "do_sample", "seed"))
def _set(front: Front, argument: str) -> None:
    from ..config import parse_value

    key, _, value = argument.partition(" ")
    if not key:
        _show(front, "params")
        return
    parsed = parse_value(value.strip()) if value.strip() else None
    front.chat.set_option(key, parsed)
    front.note(f"{key} = {parsed!r} for this chat" if parsed is not None else f"{key} back to its default for this chat")


@command("unset", "/unset KEY", "put a generation setting back to its default (same as /set KEY)")
def _unset(front: Front, argument: str) -> None:
    if not argument:
        raise UsageError("/unset needs a setting: /unset KEY (/show params lists them)")
    _set(front, argument.split()[0])


@command("settings", "/settings", "edit all of this chat's generation settings at once")
def _settings(front: Front, argument: str) -> None:
    from .chat_session import parse_settings_text

    current = "\n".join(f"{key} = {value!r}" for key, value in front.chat.options.items())
    text = front.ask("Generation settings for this chat, one KEY = VALUE per line (defaults: temperature 0.2, "
                     "top_k 50, top_p 0.95, max_new_tokens 1024)", current, multiline=True)
    if text is None:
        return
    options = parse_settings_text(text)
    front.chat.replace_options(options)
    front.note("generation settings: " + (", ".join(f"{k}={v}" for k, v in options.items()) or "defaults"))


@command("show", "/show prompt|params|template|session|stats",
         "show the exact prompt, the settings, the template, the session or the last answer's numbers",
         choices=SHOW_TOPICS)
def _show(front: Front, argument: str) -> None:
    topic = argument.strip().lower() or "prompt"
    chat = front.chat
    if topic == "prompt":
        renderer = _require_engine(front, "the prompt").renderer
        fitted = renderer.fit(chat.conversation.for_model(), chat.resolved_options()["max_new_tokens"])
        text = renderer.render_prompt(fitted.messages)
        title = f"The exact prompt the model sees ({renderer.count_tokens(text)} tokens)"
        if fitted.dropped:
            title += f"; the {fitted.dropped_turns} oldest turn(s) do not fit the context and are left out"
        front.show_text(title, text)
    elif topic == "params":
        options = chat.resolved_options()
        lines = ["# this chat's settings (/set KEY VALUE changes one, /set KEY resets it)"]
        lines += [f"{key} = {value!r}" for key, value in chat.options.items()] or ["# none: the defaults"]
        lines += ["", "# what generate() is given (temperature 0 means greedy decoding)"]
        lines += [f"{key} = {value!r}" for key, value in options.items()]
        front.show_text("Generation settings", "\n".join(lines))
    elif topic == "template":
        engine = front.engine
        if engine is not None:
            source = engine.renderer.template_source
            origin = "the tokenizer's own" if engine.renderer.uses_own_template else "the StarChat template"
        else:
            from ..chat.template import CHAT_TEMPLATE

            source, origin = CHAT_TEMPLATE, "the StarChat template"
        front.show_text(f"Chat template ({origin})", source)
    elif topic == "session":
        if chat.session_id is None or chat.store is None:
            front.show_text("Session", "not saved yet: the session is saved with its first message")
            return
        session = chat.store.get_session(chat.session_id)
        front.show_text("Session", f"session {session.id} · {make_inert(session.title) or '(untitled)'} · "
                                   f"model {make_inert(session.model)}\nsaved in {chat.store.path}")
    elif topic == "stats":
        stats = _require_engine(front, "the numbers of the last answer").stats
        front.show_text("The last answer", "\n".join(
            f"{key} = {round(value, 3) if isinstance(value, float) else value}" for key, value in stats.as_dict().items()
        ))
    else:
        raise UsageError(f"/show {topic}: show one of {', '.join(SHOW_TOPICS)}")


@command("compact", "/compact", "summarise the older turns into one message the model sees in their place "
         "(the whole chat stays saved)", idle=True)
def _compact(front: Front, argument: str) -> None:
    from .chat_session import NOTHING_TO_COMPACT

    chat = front.chat
    engine = _require_engine(front, "/compact")
    if chat.compact_covers() is None:
        raise UsageError(NOTHING_TO_COMPACT)  # before the status line says a summary is being written
    before = chat.context_use(engine.renderer)
    front.status("summarising the older turns")
    try:
        summary, cuts = chat.compact(engine)
    finally:
        front.status("")
    for cut in cuts:
        front.note(cut, "warning")
    after = chat.context_use(engine.renderer)
    turns = sum(1 for m in chat.messages[: summary["covers"]] if m["role"] == "user")
    front.show_chat(chat, f"compacted: a summary stands in for the first {turns} turn(s) in what the model sees "
                          f"(context {before.tokens} → {after.tokens} tokens; /show prompt shows it); every "
                          "message stays saved")


def compact_if_due(front: Front) -> bool:
    """After an answer: /compact on its own once the prompt passes config.toml's ``[chat] auto_compact`` share of
    its budget. Both front-ends call it, off the UI thread; True when it compacted."""
    from .chat_session import auto_compact_share

    share = auto_compact_share(front.settings)
    engine = front.engine
    if share is None or engine is None:
        return False
    use = front.chat.compact_due(engine.renderer, share)
    if use is None:
        return False
    front.note(f"the prompt takes {use.tokens} of the {use.budget} tokens it may have, past [chat] auto_compact = "
               f"{share} in config.toml: compacting")
    _compact(front, "")
    return True


@command("retry", "/retry", "regenerate the last answer", aliases=("regen",), idle=True)
def _retry(front: Front, argument: str) -> None:
    front.chat.drop_last_reply()
    front.generate()


@command("edit", "/edit", "edit the last message and send it again (its answer is replaced)", idle=True)
def _edit(front: Front, argument: str) -> None:
    front.edit_text(front.chat.begin_edit())


@command("fork", "/fork [TURN]", "copy the chat up to TURN (default: all) into a new session", idle=True)
def _fork(front: Front, argument: str) -> None:
    if argument and not argument.isdigit():
        raise UsageError("expected a turn number: /fork [TURN]")
    source = front.chat.session_id
    forked = front.chat.fork(int(argument) if argument else None)
    front.show_chat(forked, f"forked from session {source}: this is a new session ({forked.session_id}); "
                            "the original is unchanged")


@command("copy", "/copy [N]", "copy code block N (no N: the last answer)")
def _copy(front: Front, argument: str) -> None:
    if not argument:
        answers = front.chat.answers()
        if not answers:
            raise UsageError("no answer to copy yet")
        front.note(f"copied the last answer {front.copy(answers[-1]['content'])}")
        return
    number, _ = _number(argument, "/copy [N]")
    block = _block(front, number)
    front.note(f"copied block {number} ({block.line_count} lines) {front.copy(block.code)}")


@command("save", "/save N [PATH]", "save code block N to a file (asks before replacing one)")
def _save(front: Front, argument: str) -> None:
    from .code_runs import save_block

    number, path = _number(argument, "/save N [PATH]")
    save_block(front, _block(front, number), path)


@command("run", "/run N [LANGUAGE]", "run code block N in the sandbox (asks first)")
def _run(front: Front, argument: str) -> None:
    number, language = _number(argument, "/run N [LANGUAGE]")
    front.code_runner.run(front, _block(front, number), language)


@command("add", "/add [PATH...]", "attach files to your next message (no path: list what is attached; also "
         "@PATH in a message)")
def _add(front: Front, argument: str) -> None:
    from . import workspace

    if not argument:
        workspace.list_attachments(front)
        return
    workspace.attach_paths(front, workspace.split_paths(argument))


@command("drop", "/drop [PATH]", "take an attached file (or !command output) off your next message (no path: all)")
def _drop(front: Front, argument: str) -> None:
    from . import workspace

    workspace.drop(front, argument)


@command("shell", "/shell COMMAND", "run COMMAND in your shell, as you typed it, and attach its output to your "
         "next message (also !COMMAND)")
def _shell(front: Front, argument: str) -> None:
    from . import workspace

    workspace.run_shell(front, argument)


@command("apply", "/apply N [PATH]", "write code block N into a file (PATH, the file the block names, or the one "
         "attached): shows the diff and asks first")
def _apply(front: Front, argument: str) -> None:
    from . import workspace

    number, path = _number(argument, "/apply N [PATH]")
    workspace.apply_block(front, _block(front, number), path)


@command("undo", "/undo", "put back the file the last /apply changed (again for the one before)")
def _undo(front: Front, argument: str) -> None:
    from . import workspace

    workspace.undo(front)


@command("export", "/export [md|json|jsonl] [PATH]", "write this chat to a file (asks before replacing one)",
         choices=("md", "json", "jsonl"))
def _export(front: Front, argument: str) -> None:
    from ..files import write_file
    from ..store import transcripts

    chat = front.chat
    words = argument.split()
    fmt = words.pop(0).lower() if words and words[0].lower() in transcripts.FORMATS else None
    path_text = " ".join(words)
    if chat.session_id is None or chat.store is None:
        raise UsageError("nothing to export yet: send a message first")
    fmt = transcripts.format_for(path_text or None, fmt)
    path = Path(path_text).expanduser() if path_text else Path(f"starchat-{chat.session_id}.{fmt}")
    replace = path.exists()
    if replace and not front.confirm(f"{path} exists. Replace it?", yes="Replace", danger=True):
        return
    text = transcripts.render([transcripts.session_transcript(chat.store, chat.session_id)], fmt)
    write_file(path, text, force=replace)
    front.note(f"exported this chat as {fmt} to {path.resolve()}")


@command("clear", "/clear", "start a fresh session (this one stays saved)", aliases=("new",), idle=True)
def _clear(front: Front, argument: str) -> None:
    previous = front.chat.session_id
    front.show_chat(front.chat.fresh(), f"a fresh chat; the previous one is saved as session {previous}"
                    if previous else "a fresh chat")


@command("sessions", "/sessions", "open, rename, delete and search saved sessions", idle=True)
def _sessions(front: Front, argument: str) -> None:
    front.open_sessions()


@command("theme", "/theme NAME", "switch the theme (it is remembered)")
def _theme(front: Front, argument: str) -> None:
    names = front.theme_names()
    if not names:
        raise UsageError("themes belong to the full-screen app; run starchat-tui without --plain")
    if argument not in names:
        raise UsageError(f"no theme {argument!r}: one of {', '.join(sorted(names))}")
    front.set_theme(argument)


@command("quit", "/quit", "quit (also Ctrl+Q in the app, Ctrl+D in line mode)", aliases=("exit", "q", "bye"))
def _quit(front: Front, argument: str) -> None:
    front.quit()
