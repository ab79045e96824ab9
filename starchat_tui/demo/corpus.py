"""The demo corpus: thousands of templated coding dialogues, every code block in them checked.

Each dialogue is built around one :class:`~starchat_tui.demo.tasks.Task`: the user asks for a function
(in the templates' words, or in everyday words from :mod:`.phrasing`), asks to complete a docstring,
shows a bug, asks what code does or asks for tests, and the assistant answers. Some dialogues go on for
a second exchange, some have a system message, a few are small talk in which the model says what it
is, and a few ask for what it cannot do, which it declines in one line. Half the templated tasks are
renamed as users name functions, so that names are copied from the request, not recalled.

Every code block is recorded with how it must behave (:class:`Check`): a function must pass its asserts,
a buggy one must fail them, a test block must pass against the function. :func:`build_corpus` runs
them all (:mod:`.verify`) and stops on the first one that does not behave.

Tasks whose :meth:`~Task.bucket` falls below ``heldout_percent`` never appear in training, in any form;
some of them become the templated held-out tasks, in the HumanEval format. The natural held-out
requests and the out-of-scope ones are held out by :mod:`.phrasing`'s split.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..eval.tasks import EvalTask, completion_request
from .families import FAMILIES, Family
from .phrasing import DECLINE, natural_request, out_of_scope_request, out_of_scope_requests, training_names
from .tasks import Task, third_person

SYSTEM_PROMPT = "Below is a conversation between a human user and a helpful AI coding assistant."

WRITE_REQUESTS = (
    "Write a Python function `{sig}` that {ask_s}.",
    "Write a function {sig} that {ask_s}.",
    "Can you write `{sig}`? It should {ask}.",
    "I need a Python function called {f} that takes {args} and {ask_s}.",
    "Implement {sig} to {ask}.",
)
FIX_REQUESTS = (
    "This function should {ask}, but it gives wrong answers:\n\n```python\n{buggy}\n```\n\nCan you fix it?",
    "Why does this fail?\n\n```python\n{buggy}\n\n{failing}\n```",
    "Find the bug in `{f}`. It is meant to {ask}.\n\n```python\n{buggy}\n```",
)
EXPLAIN_REQUESTS = (
    "What does this code do?\n\n```python\n{code}\n```",
    "Explain this function:\n\n```python\n{code}\n```",
)
TEST_REQUESTS = ("Write tests for this function:\n\n```python\n{code}\n```",)
FOLLOW_UPS = ("Write tests for it.", "How does it work?")

SMALL_TALK = (
    ("hello", "Hello! I am the starchat-tui demo model. Ask me to write, fix or explain a small Python function."),
    ("hi", "Hi! Ask me to write, fix or explain a small Python function."),
    ("Who are you?", "I am the starchat-tui demo model: a tiny model trained in a few minutes on generated coding "
                     "dialogues. I know about fifty kinds of small Python functions. For real answers, run starchat-tui with "
                     "a real chat model, for example -m HuggingFaceH4/starchat-beta."),
    ("What can you do?", "I can write, fix, explain and test small Python functions on numbers, lists and strings: "
                         "sums, counts, filters, primes, string checks and the like. Try: write a function that "
                         "returns the largest even number in a list."),
    ("thanks", "You are welcome!"),
    ("Thank you!", "You are welcome! Ask me another one."),
    ("What is the capital of France?", "I am a tiny demo model that only knows small Python functions, so I cannot "
                                       "answer that. Load a real chat model with -m for questions like this."),
    ("Tell me a joke.", "I am a tiny demo model that only knows small Python functions. Ask me to write one!"),
)


@dataclass(frozen=True)
class Check:
    """A program from the corpus and whether it must run cleanly (True) or fail an assert (False)."""

    program: str
    must_pass: bool
    where: str


@dataclass
class Dialogue:
    """One training dialogue and the checks its code blocks must pass."""

    messages: list[dict[str, str]]
    kind: str
    tasks: list[str] = field(default_factory=list)  # the Task.key of each task it is about
    checks: list[Check] = field(default_factory=list)


@dataclass
class Corpus:
    """The training dialogues and the held-out evaluation tasks, built from one seed."""

    dialogues: list[Dialogue]
    heldout: list[EvalTask]
    seed: int
    heldout_keys: list[str] = field(default_factory=list)  # the Task.key of each held-out task
    natural: list[EvalTask] = field(default_factory=list)  # held-out requests in everyday words
    out_of_scope: list[str] = field(default_factory=list)  # held-out requests the model should decline

    @property
    def checks(self) -> list[Check]:
        return [check for dialogue in self.dialogues for check in dialogue.checks]

    def kinds(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for dialogue in self.dialogues:
            counts[dialogue.kind] = counts.get(dialogue.kind, 0) + 1
        return dict(sorted(counts.items()))


def fence(code: str) -> str:
    return f"```python\n{code}\n```"


class DialogueWriter:
    """Writes the dialogues about one task, with a random generator for the wording and the test cases."""

    def __init__(self, task: Task, rng: random.Random) -> None:
        self.task = task
        self.rng = rng
        self.cases = task.cases(rng)

    def words(self, template: str, **extra: Any) -> str:
        task = self.task
        ask_index = self.rng.randrange(len(task.family.asks))
        ask = task.ask(ask_index)
        return template.format(
            sig=f"{task.name}({', '.join(task.args)})", f=task.name, args=task.arg_text, ask=ask,
            ask_s=third_person(ask), **extra,
        )

    def tests_program(self, code: str) -> str:
        return f"{code}\n\n{self.task.asserts(self.cases)}\n"

    def passing(self, code: str, where: str) -> Check:
        return Check(self.tests_program(code), True, f"{self.task.key}: {where}")

    def failing(self, code: str, where: str) -> Check:
        return Check(self.tests_program(code), False, f"{self.task.key}: {where}")

    def answer_write(self, explain: bool = True) -> str:
        task = self.task
        answer = f"Here is `{task.name}`:\n\n{fence(task.code)}"
        return f"{answer}\n\n{task.fill(task.family.explain)}" if explain else answer

    def write(self) -> tuple[list[dict[str, str]], list[Check]]:
        request = self.words(self.rng.choice(WRITE_REQUESTS))
        return _turns(request, self.answer_write()), [self.passing(self.task.code, "write answer")]

    def complete(self) -> tuple[list[dict[str, str]], list[Check]]:
        task = self.task
        answer = f"{fence(task.completed_code)}\n\n{task.fill(task.family.explain)}"
        return _turns(completion_request(task.completion_prompt), answer), [self.passing(task.completed_code, "completion")]

    def fix(self) -> tuple[list[dict[str, str]], list[Check]]:
        task = self.task
        failing = self.failing_assert()
        request = self.words(self.rng.choice(FIX_REQUESTS), buggy=task.buggy_code, failing=failing)
        reason = task.fill(task.family.bug_reason)
        answer = f"The bug: {reason}. Here is the fixed version:\n\n{fence(task.code)}"
        checks = [
            self.failing(task.buggy_code, "buggy code in the request"),
            Check(f"{task.buggy_code}\n\n{failing}\n", False, f"{task.key}: failing assert in the request"),
            Check(f"{task.code}\n\n{failing}\n", True, f"{task.key}: the fix passes the failing assert"),
            self.passing(task.code, "fix answer"),
        ]
        return _turns(request, answer), checks

    def failing_assert(self) -> str:
        """An assert from the test cases that the buggy code gets wrong (one always exists: it is checked)."""
        namespace: dict[str, Any] = {}
        exec(compile(self.task.buggy_code, "<buggy>", "exec"), namespace)  # our own template, checked below
        buggy = namespace[self.task.name]
        for arguments, expected in self.cases:
            try:
                wrong = buggy(*[list(a) if isinstance(a, list) else a for a in arguments]) != expected
            except Exception:
                wrong = True
            if wrong:
                return f"assert {self.task.call(arguments)} == {expected!r}"
        raise ValueError(f"{self.task.key}: the bug passes every test case; the family needs an input that exposes it")

    def explanation(self) -> str:
        task = self.task
        ask = task.ask(self.rng.randrange(len(task.family.asks)))
        return f"`{task.name}` takes {task.arg_text} and {third_person(ask)}. {task.fill(task.family.explain)}"

    def explain(self) -> tuple[list[dict[str, str]], list[Check]]:
        request = self.rng.choice(EXPLAIN_REQUESTS).format(code=self.task.code)
        return _turns(request, self.explanation()), [self.passing(self.task.code, "code to explain")]

    def tests_answer(self) -> tuple[str, Check]:
        task = self.task
        chosen = self.cases[:3]
        block = task.asserts(chosen)
        answer = f"{fence(block)}\n\nEach assert calls `{task.name}` and compares the result with the right answer."
        return answer, Check(f"{task.code}\n\n{block}\n", True, f"{task.key}: tests answer")

    def tests(self) -> tuple[list[dict[str, str]], list[Check]]:
        request = TEST_REQUESTS[0].format(code=self.task.code)
        answer, check = self.tests_answer()
        return _turns(request, answer), [self.passing(self.task.code, "code to test"), check]

    def natural(self) -> tuple[list[dict[str, str]], list[Check]]:
        """A request in everyday words (:mod:`.phrasing`), answered for the function under the name it asks for."""
        request = natural_request(self.task, self.rng, held_out=False)
        writer = DialogueWriter(request.task, self.rng)
        answer = writer.answer_write(explain=self.rng.random() >= NATURAL_UNEXPLAINED_SHARE)
        return _turns(request.text, answer), [writer.passing(request.task.code, "natural answer")]

    def write_then_follow_up(self) -> tuple[list[dict[str, str]], list[Check]]:
        messages, checks = self.write()
        follow_up = self.rng.choice(FOLLOW_UPS)
        if follow_up == FOLLOW_UPS[0]:
            answer, check = self.tests_answer()
            checks.append(check)
        else:
            answer = self.explanation()
        return messages + _turns(follow_up, answer), checks


def _turns(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]


# kind -> (share of the corpus, how a writer makes it)
KINDS: dict[str, tuple[float, Callable[[DialogueWriter], tuple[list, list]]]] = {
    "write": (0.14, DialogueWriter.write),
    "natural": (0.42, DialogueWriter.natural),
    "write+follow-up": (0.06, DialogueWriter.write_then_follow_up),
    "complete": (0.14, DialogueWriter.complete),
    "fix": (0.17, DialogueWriter.fix),
    "explain": (0.05, DialogueWriter.explain),
    "tests": (0.02, DialogueWriter.tests),
}
SMALL_TALK_SHARE = 0.03
DECLINE_SHARE = 0.04
SESSION_SHARE = 0.04
SESSION_KINDS = (("write", 0.3), ("natural", 0.3), ("fix", 0.25), ("explain", 0.15))
SESSION_SMALL_TALK = 0.25
SYSTEM_SHARE = 0.2
# Share of answers to everyday requests that stop after the code. Every answer explains itself: at 0.5 (with
# fewer system prompts) the build scored 68% / 65% against 77% / 71%, for 6% fewer tokens to train on.
NATURAL_UNEXPLAINED_SHARE = 0.0
# Share of the templated dialogues that name their function as a user might, so that the model learns to
# copy whatever name it is given rather than to recall the few names of each family.
RENAMED_SHARE = 0.5
CROSS_FAMILY_SHARE = 0.5
# Held-out evaluation tasks ask the way users do: mostly a request to write, some completions and fixes.
HELDOUT_KINDS = (("write", 0.6), ("complete", 0.2), ("fix", 0.2))
# The templated held-out set is drawn from the families demo-v2 had, so that it stays the same 100 tasks and
# scores compare across builds; the families added since are measured by the natural held-out set.
TEMPLATED_HELDOUT_FAMILIES = 36


def _pick(rng: random.Random, weighted) -> Any:
    items = list(weighted)
    return rng.choices([item for item, _ in items], weights=[weight for _, weight in items])[0]


def _other_names(family: Family, rng: random.Random) -> tuple[str, ...]:
    """Training names for a renamed task: names users give this family's function, or half the time any
    other family's, so that a name is something to copy, not a clue to which function is meant."""
    others = [f for f in FAMILIES if f is not family]
    if not others or rng.random() >= CROSS_FAMILY_SHARE:
        return training_names(family) or tuple(family.names)
    other = rng.choice(others)
    return (*training_names(other), *other.names)


def _training_task(rng: random.Random, heldout_percent: int) -> Task:
    """A random task outside the held-out buckets."""
    while True:
        task = Task.sample(rng)
        if task.bucket() >= heldout_percent:
            return task


def small_talk(rng: random.Random) -> Dialogue:
    question, answer = rng.choice(SMALL_TALK)
    return Dialogue(_turns(question, answer), "small talk")


def decline(rng: random.Random) -> Dialogue:
    return Dialogue(_turns(out_of_scope_request(rng, held_out=False), DECLINE), "decline")


def heldout_task(task: Task, rng: random.Random, index: int) -> EvalTask:
    """A held-out task in the HumanEval format; ``instruction`` is the request the model is sent."""
    writer = DialogueWriter(task, rng)
    kind = _pick(rng, HELDOUT_KINDS)
    if kind == "write":
        instruction = writer.words(rng.choice(WRITE_REQUESTS))
    elif kind == "fix":
        instruction = writer.words(rng.choice(FIX_REQUESTS), buggy=task.buggy_code, failing=writer.failing_assert())
    else:
        instruction = None  # the runner asks for the completion of the prompt, as for HumanEval itself
    return EvalTask(
        task_id=f"demo/{index}", prompt=task.completion_prompt, test=task.check_function(writer.cases),
        entry_point=task.name, instruction=instruction,
    )


def training_dialogues(rng: random.Random, size: int, heldout_percent: int) -> list[Dialogue]:
    """``size`` dialogues about tasks outside the held-out buckets."""
    dialogues: list[Dialogue] = []
    while len(dialogues) < size:
        roll = rng.random()
        if roll < SMALL_TALK_SHARE:
            dialogues.append(small_talk(rng))
            continue
        roll -= SMALL_TALK_SHARE
        if roll < DECLINE_SHARE:
            dialogues.append(decline(rng))
            continue
        if roll < DECLINE_SHARE + SESSION_SHARE:
            kind = "session"
        else:
            kind = _pick(rng, ((name, share) for name, (share, _) in KINDS.items()))
        messages, checks, keys = [], [], []
        # A session is several requests in one conversation, so that later positions get trained too.
        for _ in range(rng.randint(3, 4) if kind == "session" else 1):
            if kind == "session" and rng.random() < SESSION_SMALL_TALK:
                messages += small_talk(rng).messages  # "thanks" and "who are you?" come mid-chat too
                continue
            task = _training_task(rng, heldout_percent)
            keys.append(task.key)  # the split is decided on the task before any renaming
            if rng.random() < RENAMED_SHARE:
                task = dataclasses.replace(task, name_template=rng.choice(_other_names(task.family, rng)))
            make = KINDS[_pick(rng, SESSION_KINDS)][1] if kind == "session" else KINDS[kind][1]
            turns, more = make(DialogueWriter(task, rng))
            messages += turns
            checks += more
        if rng.random() < SYSTEM_SHARE:
            messages = [{"role": "system", "content": SYSTEM_PROMPT}, *messages]
        dialogues.append(Dialogue(messages, kind, keys, checks))
    return dialogues


def heldout_tasks(rng: random.Random, count: int, heldout_percent: int) -> tuple[list[EvalTask], list[str], list[Check]]:
    """``count`` distinct held-out tasks, their Task keys, and the checks that their tests are sound.

    Round-robin over the families, so that every family is measured; a family whose held-out
    combinations have all been taken drops out after a run of misses.
    """
    tasks: list[EvalTask] = []
    keys: list[str] = []
    checks: list[Check] = []
    active = list(FAMILIES[:TEMPLATED_HELDOUT_FAMILIES])
    misses = {f.key: 0 for f in active}
    turn = 0
    while len(tasks) < count and active:
        family = active[turn % len(active)]
        turn += 1
        task = Task.sample(rng, family)
        if task.bucket() >= heldout_percent or task.key in keys:
            misses[family.key] += 1
            if misses[family.key] > 400:
                active.remove(family)
            continue
        misses[family.key] = 0
        evaluation = heldout_task(task, rng, len(tasks))
        tasks.append(evaluation)
        keys.append(task.key)
        # The reference solution must pass the task's own check(), or the task measures nothing.
        program = f"{task.code}\n\n{evaluation.test}\ncheck({evaluation.entry_point})\n"
        checks.append(Check(program, True, f"{evaluation.task_id} ({task.key}): reference solution"))
    return tasks, keys, checks


UNNAMED_ENTRY_POINT = "requested_function"
# A request that names no function is answered under a name the model picks; the check takes the first
# function the answer defines, so a right function under another name than the family's still passes.
UNNAMED_TEST = f"""\
import types as _types

_defined = [_value for _value in list(globals().values()) if isinstance(_value, _types.FunctionType)]
{UNNAMED_ENTRY_POINT} = _defined[0] if _defined else None

"""


def natural_tasks(rng: random.Random, count: int) -> tuple[list[EvalTask], list[Check]]:
    """``count`` held-out requests in everyday words, round-robin over the families, and their soundness checks.

    Their frames and names are from the held-out side of :mod:`.phrasing`'s split, so no training
    dialogue asks in these words or for a function of these names.
    """
    tasks: list[EvalTask] = []
    checks: list[Check] = []
    seen: set[str] = set()
    while len(tasks) < count:
        family = FAMILIES[len(tasks) % len(FAMILIES)]
        request = natural_request(Task.sample(rng, family), rng, held_out=True)
        if request.text in seen:
            continue
        seen.add(request.text)
        task = request.task
        test = task.check_function(task.cases(rng))
        if request.named:
            evaluation = EvalTask(task_id=f"natural/{len(tasks)}", prompt=task.completion_prompt, test=test,
                                  entry_point=task.name, instruction=request.text)
        else:  # any name will do: the user gave none
            evaluation = EvalTask(task_id=f"natural/{len(tasks)}", prompt="", test=UNNAMED_TEST + test,
                                  entry_point=UNNAMED_ENTRY_POINT, instruction=request.text)
        tasks.append(evaluation)
        program = f"{task.code}\n\n{evaluation.test}\ncheck({evaluation.entry_point})\n"
        checks.append(Check(program, True, f"{evaluation.task_id} ({task.key}): reference solution"))
    return tasks, checks


def build_corpus(size: int = 5000, *, seed: int = 0, heldout: int = 100, heldout_percent: int = 10,
                 natural: int = 100, out_of_scope: int = 30,
                 progress: Callable[[str], None] | None = None) -> Corpus:
    """``size`` training dialogues and ``heldout`` evaluation tasks, the same for the same arguments.

    Raises ValueError naming the first code block that does not behave.
    """
    from .verify import run_checks

    report = progress or (lambda line: None)
    dialogues = training_dialogues(random.Random(seed), size, heldout_percent)
    # The held-out tasks come from their own generator, so that changing one split never moves the other.
    held, held_keys, held_checks = heldout_tasks(random.Random(f"heldout-{seed}"), heldout, heldout_percent)
    leaked = {key for d in dialogues for key in d.tasks} & set(held_keys)
    if leaked:  # cannot happen (the buckets differ); checked because everything rests on it
        raise AssertionError(f"held-out tasks also in training: {sorted(leaked)[:3]}")

    natural_held, natural_checks = natural_tasks(random.Random(f"natural-{seed}"), natural)
    declines = out_of_scope_requests(random.Random(f"scope-{seed}"), out_of_scope)
    corpus = Corpus(dialogues, held, seed, held_keys, natural_held, declines)
    checks = corpus.checks + held_checks + natural_checks
    report(f"checking {len(checks):,} code blocks")
    failures = run_checks(checks)
    if failures:
        raise ValueError(f"{len(failures)} corpus code blocks misbehave; first: {failures[0]}")
    report(f"corpus: {len(dialogues):,} dialogues ({_describe(corpus.kinds())}), all {len(checks):,} code blocks "
           f"behave; held out: {len(held)} templated tasks, {len(natural_held)} natural requests, "
           f"{len(declines)} out-of-scope requests")
    return corpus


def _describe(kinds: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in kinds.items())
