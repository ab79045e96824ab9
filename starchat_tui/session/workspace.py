"""The user's files in a chat: attaching them (/add, @path, -f), a shell command's output (!command), and
writing a code block of the chat into a file (/apply) and back (/undo).

Every front-end reaches this through the slash commands or :func:`attach_mentions`, so the rules are the
same everywhere: a file that cannot be attached is one line saying why and the message waits; nothing is
written without a diff shown and a yes; a file outside the project, or changed since it was attached, needs
a second, explicit yes.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
import os
import re
import shlex
import signal
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..chat.attachments import Attachment, decode_input
from ..errors import UsageError

if TYPE_CHECKING:
    from ..chat.blocks import CodeBlock
    from .chat_session import ChatSession
    from .front import Front

# Bigger than any source file worth reading whole, small enough that it cannot crowd out the conversation
# of a large-context model on its own.
MAX_FILE_BYTES = 256 * 1024
SHELL_TIMEOUT = 60.0  # s: a !command still running by then is stopped, with what it printed kept
SHOWN_OUTPUT_LINES = 40  # of a !command's output in the chat; all of it is attached
# "@path" at the start of a word: an e-mail address (a@b.c) is not a mention.
MENTION = re.compile(r"(?:(?<=\s)|^)@(\S+)")
# A file name in the first line of a block: "# file: app.py", "// filename: x.ts", "<!-- path: a.html -->".
HINT_LINE = re.compile(r"^\s*(?:#|//|--|;|/\*|<!--)\s*(?:file(?:name)?|path)\s*:\s*(\S+?)\s*(?:\*/|-->)?\s*$", re.I)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def project_folder(start: Path) -> Path:
    """The git work tree ``start`` is in, else ``start``: where /apply writes without a second question."""
    try:
        found = subprocess.run(["git", "-C", str(start), "rev-parse", "--show-toplevel"], capture_output=True,
                               text=True, timeout=5, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return start.resolve()
    top = found.stdout.strip()
    return Path(top).resolve() if found.returncode == 0 and top else start.resolve()


def resolve(chat: ChatSession, path_text: str) -> Path:
    """``path_text`` as the user means it: relative to the folder the chat started in."""
    return (chat.folder / Path(path_text).expanduser()).resolve()


def read_file(path_text: str, folder: Path | None = None) -> Attachment:
    """The file as an attachment, or a one-line UsageError saying why it cannot be one."""
    from ..files import read_bytes

    path = (folder or Path.cwd()) / Path(path_text).expanduser()
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UsageError(f"{path_text}: no such file; check the name (Tab completes it after @ or /add)") from None
    except OSError as error:
        raise UsageError(f"{path_text}: cannot read it ({error.strerror})") from None
    if path.is_dir():
        raise UsageError(f"{path_text} is a folder: attach the files in it by name")
    if size > MAX_FILE_BYTES:
        raise UsageError(f"{path_text} is {size // 1024} KiB, over the {MAX_FILE_BYTES // 1024} KiB limit for an "
                         f"attachment: attach a smaller file, or the part that matters (!sed -n 1,200p {path_text})")
    data = read_bytes(str(path), folder_hint="attach the files in it by name")
    try:
        attachment = decode_input(data, path_text)
    except ValueError as error:  # binary or empty: the message says which
        raise UsageError(str(error)) from None
    attachment.path = str(path.resolve())
    attachment.digest = digest(data)
    return attachment


def describe(front: Front, attachment: Attachment) -> str:
    """``app.py (12 lines, 140 tokens)``; the count is an estimate (marked ~) until the model is loaded."""
    lines = attachment.text.count("\n") + (0 if attachment.text.endswith("\n") else 1)
    engine = front.engine
    tokens = f"{engine.renderer.count_tokens(attachment.text)}" if engine is not None else f"~{len(attachment.text) // 4}"
    return f"{attachment.source} ({lines} lines, {tokens} tokens)"


def attach_paths(front: Front, paths: list[str]) -> None:
    """Attach each file; one that cannot be is one line and the others still go."""
    for path_text in paths:
        try:
            attachment = read_file(path_text, front.chat.folder)
        except UsageError as error:
            front.note(f"not attached: {error}", "warning")
            continue
        front.chat.attach(attachment)
        front.note(f"attached {describe(front, attachment)}: it goes with your next message")
    front.attachments_changed()


def attach_mentions(front: Front, text: str) -> bool:
    """Attach the files a message names as ``@path``; False when one of them cannot be (the message waits).

    A word after @ that names no file is left as text: decorators (@property) and handles are common in
    questions about code.
    """
    failed = False
    for match in MENTION.finditer(text):
        name = match.group(1)
        candidates = [name, name.rstrip(".,;:!?)\"'")]
        found = next((c for c in candidates if c and (front.chat.folder / Path(c).expanduser()).is_file()), None)
        if found is None:
            continue
        try:
            attachment = read_file(found, front.chat.folder)
        except UsageError as error:
            front.note(f"not sent: @{found}: {error}; your message is kept: change it and send again", "warning")
            failed = True
            continue
        front.chat.attach(attachment)
    front.attachments_changed()
    return not failed


def drop(front: Front, name: str) -> None:
    chat = front.chat
    if not chat.attachments:
        raise UsageError("nothing is attached: /add PATH attaches a file")
    if not name:
        dropped = [a.source for a in chat.attachments]
        chat.attachments = []
    else:
        key = str(resolve(chat, name))
        keep = [a for a in chat.attachments if a.source != name and a.path != key]
        if len(keep) == len(chat.attachments):
            attached = ", ".join(a.source for a in chat.attachments)
            raise UsageError(f"{name} is not attached (attached: {attached}); /drop with no name drops them all")
        dropped = [a.source for a in chat.attachments if a not in keep]
        chat.attachments = keep
    front.attachments_changed()
    front.note(f"dropped {', '.join(dropped)}: " + ("still attached: " + ", ".join(a.source for a in chat.attachments)
                                                    if chat.attachments else "nothing is attached now"))


def list_attachments(front: Front) -> None:
    chat = front.chat
    if not chat.attachments:
        front.note("nothing is attached: /add PATH (or @PATH in a message) attaches a file")
        return
    front.note("attached, going with your next message: " + "; ".join(describe(front, a) for a in chat.attachments))


# -- !command ------------------------------------------------------------------------------------------


def run_shell(front: Front, command: str) -> None:
    """Run what the user typed after ``!`` in their shell, show the output and attach it to the next message.

    Only ever called for a line the user typed: an answer's code goes through /run and its sandbox.
    """
    if not command.strip():
        raise UsageError("nothing to run: type !COMMAND, for example !git diff")
    # A session of its own, so a timeout or a stop ends everything the command started, not only the shell;
    # no stdin, so it cannot read keys meant for the chat.
    process = subprocess.Popen(command, shell=True, cwd=front.chat.folder, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    stopped = ""
    deadline = time.monotonic() + SHELL_TIMEOUT
    try:
        with front.code_runner.stoppable() as cancel:
            front.status(f"running {command}")
            while True:
                try:
                    data, _ = process.communicate(timeout=0.1)
                    break
                except subprocess.TimeoutExpired:
                    if cancel.is_set() or time.monotonic() > deadline:
                        stopped = "stopped by you" if cancel.is_set() else f"stopped after {SHELL_TIMEOUT:.0f} s"
                        _stop(process)
    except BaseException:
        _stop(process)
        raise
    finally:
        front.status("")
    output = data.decode("utf-8", errors="replace")
    status = stopped or f"exit {process.returncode}"
    if len(output) > MAX_FILE_BYTES:
        output, status = output[:MAX_FILE_BYTES], f"{status}; only its first {MAX_FILE_BYTES // 1024} KiB are kept"
    front.chat.attach(Attachment(source=f"output of `{command}` ({status})", text=output or "(no output)\n"))
    front.attachments_changed()
    lines = output.rstrip("\n").splitlines()
    shown = "\n".join(lines[:SHOWN_OUTPUT_LINES])
    more = f"\n… {len(lines) - SHOWN_OUTPUT_LINES} more lines" if len(lines) > SHOWN_OUTPUT_LINES else ""
    front.note(f"$ {command} ({status}; the output goes with your next message, /drop removes it)"
               + (f"\n{shown}{more}" if lines else "\n(no output)"))


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- /apply and /undo ----------------------------------------------------------------------------------


def path_hint(block: CodeBlock) -> tuple[str, str]:
    """(file name the block names, its code without the naming line); ('', code) when it names none."""
    first, _, rest = block.code.partition("\n")
    found = HINT_LINE.match(first)
    if found:
        return found.group(1), rest
    for word in block.info.split()[1:]:
        key, eq, value = word.partition("=")
        name = (value if eq and key.lower() in ("title", "file", "filename", "path") else "" if eq else key).strip("\"'")
        if "." in name or "/" in name:
            return name, block.code
    return "", block.code


def merge_definitions(old: str, new: str) -> str | None:
    """``old`` with each top-level function or class of ``new`` in place of the one of the same name.

    Names ``old`` lacks are appended. None when ``new`` is not only definitions or either text is not
    Python, so the caller treats the block as a whole file.
    """
    try:
        new_tree, old_tree = ast.parse(new), ast.parse(old)
    except SyntaxError:
        return None
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    if not new_tree.body or not all(isinstance(node, kinds) for node in new_tree.body):
        return None

    def span(node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> tuple[int, int]:
        start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
        return start - 1, node.end_lineno or node.lineno

    old_lines = old.splitlines(keepends=True)
    new_lines = new.splitlines(keepends=True)
    existing = {node.name: span(node) for node in old_tree.body if isinstance(node, kinds)}
    replaced: list[tuple[tuple[int, int], str]] = []
    appended: list[str] = []
    for node in new_tree.body:
        assert isinstance(node, kinds)
        start, end = span(node)
        text = "".join(new_lines[start:end])
        text = text if text.endswith("\n") else text + "\n"
        if node.name in existing:
            replaced.append((existing[node.name], text))
        else:
            appended.append(text)
    for (start, end), text in sorted(replaced, reverse=True):
        old_lines[start:end] = [text]
    merged = "".join(old_lines)
    if appended:
        merged = (merged.rstrip("\n") + "\n\n\n" if merged.strip() else "") + "\n\n".join(appended)
    return merged


def apply_block(front: Front, block: CodeBlock, path_text: str = "") -> None:
    """Write code block N into a file, after showing the diff and a yes; see the module's rules."""
    from ..files import write_file

    chat = front.chat
    hinted, code = path_hint(block)
    if not code.strip():
        raise UsageError(f"block {block.number} is empty: there is nothing to apply")
    named = path_text.strip() or hinted
    if named:
        path = resolve(chat, named)
    else:
        files = {a.path for a in [*chat.files.values(), *chat.attachments] if a.path}
        if len(files) != 1:
            raise UsageError(f"block {block.number} names no file and {len(files) or 'no'} files are attached: "
                             f"say which: /apply {block.number} PATH")
        path = Path(files.pop())
    if path.is_dir():
        raise UsageError(f"{path} is a folder: give a file name: /apply {block.number} PATH")
    before_bytes = path.read_bytes() if path.is_file() else None
    before = _text(before_bytes, path) if before_bytes is not None else None
    known = chat.known_file(path)
    changed = before_bytes is not None and known is not None and known.digest != digest(before_bytes)
    if changed and not front.confirm(f"{path.name} changed on disk since you attached it: apply block {block.number} "
                                     "over the changed file anyway?", yes="Apply anyway", danger=True):
        front.note(f"not applied: {path.name} changed since you attached it (/add {path.name} reads it again)", "warning")
        return
    code = code if code.endswith("\n") else code + "\n"
    merged = merge_definitions(before, code) if before is not None and path.suffix in (".py", ".pyi") else None
    after, how = (merged, "replace the definitions of") if merged is not None else (code, "write the whole of")
    if before is None:
        how = "create"
    shown = _shown_name(chat, path)
    if after == before:
        front.note(f"{shown} already holds block {block.number}: nothing to apply")
        return
    diff = "".join(difflib.unified_diff((before or "").splitlines(keepends=True), after.splitlines(keepends=True),
                                        fromfile="/dev/null" if before is None else _diff_name("a", shown),
                                        tofile=_diff_name("b", shown)))
    if not front.confirm(f"Apply block {block.number}: {how} {shown}?", yes="Apply", detail=diff):
        front.note(f"not applied: {shown} is unchanged")
        return
    root = project_folder(chat.folder)
    if not path.is_relative_to(root) and not front.confirm(
        f"{path} is outside the project folder {root}. Write there anyway?", yes="Write outside", danger=True,
    ):
        front.note(f"not applied: {path} is outside the project folder {root}", "warning")
        return
    now = path.read_bytes() if path.is_file() else None
    if now != before_bytes:  # changed while the diff was on screen: what was approved is not what is there
        raise UsageError(f"{shown} changed while the diff was shown: nothing written; /apply {block.number} again")
    if before is None and not path.parent.is_dir():
        try:
            path.parent.mkdir(parents=True)
        except OSError as error:
            raise UsageError(f"cannot make the folder {path.parent}: {error.strerror or error}") from None
    write_file(path, after, force=before is not None)
    from .chat_session import Applied

    chat.applied.append(Applied(path, before, after, block.number))
    if known is not None:
        known.digest = digest(after.encode())  # our own write is not a change behind the user's back
    added = sum(1 for line in diff.splitlines() if line.startswith("+") and not line.startswith("+++"))
    removed = sum(1 for line in diff.splitlines() if line.startswith("-") and not line.startswith("---"))
    front.note(f"applied block {block.number} to {shown} (+{added} -{removed} lines); /undo puts it back")


def undo(front: Front) -> None:
    """Put back the file the last /apply changed (remove it when /apply created it)."""
    from ..files import write_file

    chat = front.chat
    if not chat.applied:
        raise UsageError("nothing to undo: /undo takes back an /apply, and none is left in this chat")
    last = chat.applied[-1]
    shown = _shown_name(chat, last.path)
    now = last.path.read_bytes() if last.path.is_file() else None
    if now != last.after.encode() and not front.confirm(
        f"{shown} changed since block {last.block} was applied: put back the version from before anyway?",
        yes="Put it back", danger=True,
    ):
        front.note(f"not undone: {shown} is as you left it", "warning")
        return
    if last.before is None:
        if now is not None:
            last.path.unlink()
        front.note(f"removed {shown}, which /apply {last.block} had created")
    else:
        write_file(last.path, last.before, force=now is not None)
        front.note(f"{shown} is back as it was before /apply {last.block}")
    chat.applied.pop()
    known = chat.known_file(last.path)
    if known is not None and last.before is not None:
        known.digest = digest(last.before.encode())


def _text(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text, so a block cannot be merged into it; apply to another file") from None


def _diff_name(side: str, shown: str) -> str:
    """git's a/ and b/ names for a file in the project; a path outside it is shown as it is."""
    return shown if shown.startswith("/") else f"{side}/{shown}"


def _shown_name(chat: ChatSession, path: Path) -> str:
    try:
        return str(path.relative_to(chat.folder.resolve()))
    except ValueError:
        return str(path)


# -- completion ----------------------------------------------------------------------------------------


# git's list of a repository's files, per folder, and when it was read: completion asks on every key, and in a
# repository of 50,000 files listing them takes longer than a keystroke should wait.
_LISTINGS: dict[Path, tuple[float, list[str] | None]] = {}
LISTING_TTL_S = 2.0


def git_files(folder: Path) -> list[str] | None:
    """The files git knows under ``folder`` (tracked, and untracked but not ignored); None outside a repository."""
    now = time.monotonic()
    cached = _LISTINGS.get(folder)
    if cached is not None and now - cached[0] < LISTING_TTL_S:
        return cached[1]
    try:
        listed = subprocess.run(["git", "-C", str(folder), "ls-files", "--cached", "--others", "--exclude-standard"],
                                capture_output=True, text=True, timeout=5, stdin=subprocess.DEVNULL)
        names = listed.stdout.splitlines() if listed.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        names = None
    _LISTINGS[folder] = (now, names)
    return names


def path_choices(folder: Path, typed: str, limit: int = 50) -> list[str]:
    """Files under ``folder`` for what was typed, best first: paths that start with it, then file names that
    do, then paths holding its letters in order (``apmain`` finds ``app/main.py``). In a repository the list is
    git's, so .gitignore is respected; elsewhere, the folder's entries one level at a time."""
    names = git_files(folder)
    if names is None:
        base = Path(typed).parent if "/" in typed else Path()
        try:
            names = [str(base / p.name) + ("/" if p.is_dir() else "") for p in (folder / base).iterdir()
                     if not p.name.startswith(".")]
        except OSError:
            names = []
        return sorted(name for name in names if name.startswith(typed))[:limit]
    if not typed:
        return sorted(names)[:limit]
    starts = sorted(name for name in names if name.startswith(typed))
    if len(starts) >= limit:
        return starts[:limit]
    lowered = typed.lower()
    chosen = set(starts)
    by_name = sorted((name for name in names if name not in chosen and name.rsplit("/", 1)[-1].lower().startswith(lowered)),
                     key=len)
    chosen.update(by_name)
    letters = re.compile(".*?".join(map(re.escape, lowered)), re.IGNORECASE)
    fuzzy = sorted((name for name in names if name not in chosen and letters.search(name)), key=len)
    return [*starts, *by_name, *fuzzy][:limit]


def split_paths(argument: str) -> list[str]:
    """The paths of ``/add a.py "my file.txt"``, quoted as in a shell."""
    try:
        return shlex.split(argument)
    except ValueError as error:
        raise UsageError(f"/add: {error}: quote a path with spaces in it, like /add \"my file.py\"") from None
