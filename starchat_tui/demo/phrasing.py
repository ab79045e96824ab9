"""How people ask: natural requests for a task, and requests the demo model should decline.

The templated requests of :mod:`.corpus` name the function and its parameters the same few ways. People
write "write a function that returns the largest even number in a list", "can you make me a python func
`get_max(xs)`?", "is_prime(n) - checks if a number is prime", in lower case, with typos, with an example
or two. A request here is composed from independent parts, so that a tiny model meets each part in many
combinations and learns them one by one:

- a *frame*, the sentence around the request ("Can you write {fn} that {does}?");
- how the function is *named*: a signature in backticks or not, "called", "named", or no name at all
  (the model then names it after the family: :func:`default_name`);
- what it *does*: one of the family's asks, its natural phrasings included;
- optional *examples* taken from the reference implementation, "Python" said or not, lower case, a typo.

The split is by construction. :data:`HELD_OUT_FRAMES` and the names for which :func:`held_out_name` is
true never appear in training, in any form, so the natural held-out set measures new wordings around
new names. Requests far outside what the model knows (other languages, programs, facts) are built the
same way from :data:`OUT_OF_SCOPE` and get :data:`DECLINE`; some of those are held out too.
"""

from __future__ import annotations

import functools
import itertools
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

from .families import FAMILIES, Family, arg_choices
from .tasks import Task, stable_percent, third_person

# {fn} is the function with or without its name ("a function", "a Python function `f(x)`"); {does} the ask
# in the third person, {do} in the infinitive.
TRAINING_FRAMES = (
    "Write {fn} that {does}.",
    "write {fn} that {does}",
    "Can you write {fn} that {does}?",
    "Create {fn} which {does}.",
    "Implement {fn} that {does}.",
    "I need {fn} that {does}.",
    "How do I write {fn} that {does}?",
    "Make {fn} to {do}.",
    "Please write {fn}. It should {do}.",
    "Give me {fn} that {does}.",
    "Could you implement {fn} that {does}?",
    "{Fn} that {does}",
    "Write {fn} to {do}.",
    "I want {fn} that {does}.",
    "Define {fn} to {do}.",
    "Can you make {fn} that will {do}?",
    "Need {fn} that {does}",
    "Show me {fn} that {does}.",
)
HELD_OUT_FRAMES = (
    "Help me write {fn} that {does}.",
    "How would you write {fn} that {does}?",
    "Code {fn} that {does}.",
    "I'd like {fn} that {does}.",
    "Please create {fn} that {does}.",
    "could you write {fn} to {do}?",
    "Write me {fn} that {does}, please.",
    "Can you help me with {fn} that {does}?",
)
FUNCTION_WORDS = ("a function", "a Python function", "a python function", "a function in Python", "a func",
                  "a Python func", "a method", "a small function")
EXAMPLE_FORMS = (
    " For example, {call} should return {result}.",
    " Example: {call} -> {result}",
    "\n\nFor example {call} returns {result}.",
    " e.g. {call} == {result}",
)
# Noun phrases for the input when the request names no parameter.
INPUT_PHRASES = {
    "number": ("a number", "an integer", "a given number", "a number n"),
    "list": ("a list", "a list of numbers", "a list of integers", "a given list", "a list of ints"),
    "text": ("a string", "some text", "a given string", "a text"),
}
NAME_PREFIXES = ("", "", "", "get_", "find_", "calc_", "compute_", "my_", "check_", "do_", "make_")
NAME_SUFFIXES = ("", "", "", "", "_fn", "_func", "2", "_value", "_result")
GENERIC_NAMES = ("solve", "solution", "func", "helper", "f", "process", "answer", "main_func", "run", "task")
HELD_OUT_NAME_PERCENT = 25

# A request for something the demo model cannot do: it says so in one short reply instead of guessing.
OUT_OF_SCOPE = (
    "Write a JavaScript function that {js}.", "Write {js_fn} in Java that {js}.", "How do I {thing}?",
    "Write a Python program that {program}.", "Can you build {app}?", "{question}", "Write a C++ function that {js}.",
    "Create {app} in Python.", "Write a Rust program that {program}.", "Help me {thing}.", "write a bash script that {program}",
)
OUT_OF_SCOPE_SLOTS = {
    "js": ("reverses a string", "sorts an array", "adds two numbers", "returns the largest number in an array",
           "counts the vowels in a string", "checks if a number is even"),
    "js_fn": ("a function", "a method", "a class"),
    "thing": ("connect to a PostgreSQL database", "center a div in CSS", "deploy my app to Kubernetes",
              "set up a React project", "read an Excel file with pandas", "fix a segmentation fault in C",
              "configure nginx as a reverse proxy", "write a SQL query that joins two tables",
              "train a neural network in PyTorch", "send an email from Python", "use git rebase",
              "parse JSON from a web API", "make an HTTP request with requests"),
    "program": ("downloads a web page and saves every image on it", "reads a CSV file and plots it",
                "sends an email every morning", "scrapes the prices from a shopping site",
                "watches a folder and backs up new files", "resizes every photo in a folder",
                "trains a model to classify images", "runs a chat server on a socket",
                "renames all the files in a directory by date", "encrypts a file with a password"),
    "app": ("a web server with Flask", "a REST API for a todo list", "a snake game", "a Discord bot",
            "a calculator app with a GUI", "a login page", "a website for my shop", "a tic-tac-toe game with AI"),
    "question": ("What is the capital of France?", "Who won the World Cup in 2018?", "What's the weather today?",
                 "Translate 'good morning' into German.", "Write a poem about the sea.", "Tell me about black holes.",
                 "What is the meaning of life?", "Summarise the plot of Hamlet.", "How tall is Mount Everest?",
                 "Recommend a good book."),
}
DECLINE_MARK = "That is beyond me"
DECLINE = (f"{DECLINE_MARK}: I am the tiny starchat-tui demo model and only know small Python functions on "
           "numbers, lists and strings. For this, run starchat-tui with a real chat model, for example "
           "-m HuggingFaceH4/starchat-beta.")
HELD_OUT_SCOPE_PERCENT = 30


@functools.cache
def held_out_name(name: str) -> bool:
    """Names kept out of training: the natural held-out set asks for functions by these names only.

    A family's own names are always training names: the templated dialogues use them.
    """
    return name not in _family_names() and stable_percent(f"name:{name}") < HELD_OUT_NAME_PERCENT


@functools.cache
def _family_names() -> frozenset[str]:
    return frozenset(name for family in FAMILIES for name in family.names)


def default_name(family: Family) -> str:
    """What the model calls a function the request leaves unnamed: the family's first name."""
    return family.names[0]


def default_args(family: Family) -> tuple[str, ...]:
    return tuple(arg_choices(family.arg_kind)[0])


@functools.cache
def training_names(family: Family) -> tuple[str, ...]:
    """The names a training dialogue may give this family's function in place of its own.

    Never one of the family's own names: a task renamed to another of them would be another task,
    possibly a held-out one.
    """
    return tuple(name for name in user_names(family) if not held_out_name(name) and name not in family.names)


def user_names(family: Family) -> list[str]:
    """Names a user might give this family's function: its own names, decorated, and generic ones."""
    names = {f"{prefix}{stem}{suffix}" for stem in family.names for prefix in NAME_PREFIXES for suffix in NAME_SUFFIXES}
    names |= set(GENERIC_NAMES)
    # a prefix that repeats the stem's own verb ("get_get_x", "check_is_x") reads as no user would write
    return sorted(name for name in names if not re.match(r"(\w+?)_\1", name))


@dataclass(frozen=True)
class Request:
    """A natural request for one task: the user's words, and the task (under the name the answer uses)."""

    text: str
    task: Task
    named: bool


def _typo(text: str, rng: random.Random, keep: Sequence[str]) -> str:
    """Swap two neighbouring letters in one ordinary word of ``text`` (never in a name or a quoted value)."""
    words = [m for m in re.finditer(r"(?<![`'\w])[a-z]{5,}(?![`'\w])", text) if m.group() not in keep]
    if not words:
        return text
    word = rng.choice(words)
    at = rng.randrange(1, len(word.group()) - 2)
    chars = list(word.group())
    chars[at], chars[at + 1] = chars[at + 1], chars[at]
    return text[: word.start()] + "".join(chars) + text[word.end():]


def _ask(task: Task, rng: random.Random, words: dict[str, str] | None) -> str:
    """What the function does, in one of the family's phrasings; ``words`` describe unnamed inputs.

    The templated asks name their parameter ("compute {a}! (the factorial of {a})") and read badly with
    a noun phrase in its place, so an unnamed input takes the natural phrasings only.
    """
    family = task.family
    slots = dict(task.slots)
    if words:
        slots.update(words)
        return rng.choice(family.natural or family.asks).format(**slots)
    return rng.choice([*family.asks, *family.natural]).format(**slots)


def _examples(task: Task, rng: random.Random, named: bool) -> str:
    """One or two worked examples from the reference, as users add them to a request."""
    cases = [case for case in task.cases(rng) if len(repr(case)) < 60]
    text = ""
    for arguments, expected in rng.sample(cases, k=min(len(cases), rng.choice((1, 1, 2)))):
        if named:
            text += rng.choice(EXAMPLE_FORMS).format(call=task.call(arguments), result=repr(expected))
        else:
            given = ", ".join(repr(a) for a in arguments)
            text += rng.choice((f" For example, given {given} it should return {expected!r}.",
                                f" e.g. {given} -> {expected!r}"))
    return text


def natural_request(task: Task, rng: random.Random, *, held_out: bool) -> Request:
    """A request for ``task`` in everyday words; ``task`` comes back renamed as the request names it.

    ``held_out`` picks a frame, and for a named request a name, from the held-out side of the split.
    """
    family = task.family
    names = [name for name in user_names(family) if held_out_name(name) == held_out]
    # Two inputs read badly without their names ("the larger of a number and another"), so they are named.
    named = family.arg_kind == "pair" or rng.random() < 0.6
    function_word = rng.choice(FUNCTION_WORDS)
    if named:
        task = replace(task, name_template=rng.choice(names))
        signature = f"{task.name}({', '.join(task.args)})"
        fn = rng.choice((f"{function_word} `{signature}`", f"{function_word} {signature}",
                         f"{function_word} called {task.name}", f"{function_word} named `{task.name}`",
                         f"`{signature}`"))
        ask = _ask(task, rng, None)
    else:
        task = replace(task, name_template=default_name(family), args=default_args(family))
        fn = function_word
        ask = _ask(task, rng, {"a": rng.choice(INPUT_PHRASES[family.arg_kind])})
    frame = rng.choice(HELD_OUT_FRAMES if held_out else TRAINING_FRAMES)
    # third_person turns the first verb only: "add 3 to x and return the result" needs its second one too
    does, do = third_person(ask).replace(" and return ", " and returns "), ask
    text = frame.format(fn=fn, Fn=fn[0].upper() + fn[1:], does=does, do=do)
    if rng.random() < 0.25:
        text = (text if text.endswith((".", "?")) else text + ".") + _examples(task, rng, named)
    keep = [task.name, *task.args]
    if rng.random() < 0.2:
        text = _typo(text, rng, keep)
    if rng.random() < 0.2:
        text = text.lower()  # names and parameters are lower case already, so they survive it
    if rng.random() < 0.3:
        text = text.rstrip(".?")
    return Request(text, task, named)


@functools.cache
def _out_of_scope(held_out: bool) -> tuple[str, ...]:
    """Every out-of-scope request on one side of the split (the lower-cased text decides the side)."""
    every = {frame.format(**dict(zip(keys, values)))
             for frame in OUT_OF_SCOPE for keys in [re.findall(r"{(\w+)}", frame)]
             for values in itertools.product(*(OUT_OF_SCOPE_SLOTS[key] for key in keys))}
    return tuple(sorted(text for text in every if (stable_percent(f"scope:{text.lower()}") < HELD_OUT_SCOPE_PERCENT) == held_out))


def out_of_scope_request(rng: random.Random, *, held_out: bool) -> str:
    """A request the demo model cannot answer; the held-out side holds requests never in training."""
    text = rng.choice(_out_of_scope(held_out))
    return text.lower() if rng.random() < 0.15 else text


def out_of_scope_requests(rng: random.Random, count: int) -> list[str]:
    """Up to ``count`` distinct held-out requests for things the demo model cannot do."""
    return rng.sample(_out_of_scope(True), k=min(count, len(_out_of_scope(True))))
