"""The demo corpus: thousands of templated coding dialogues, every code block in them checked.

Each dialogue is built around one :class:`~starchat_tui.demo.tasks.Task`: the user asks for a function,
asks to complete a docstring, shows a bug, asks what code does or asks for tests, and the assistant
answers. Some dialogues go on for a second exchange, some have a system message, and a few are small
talk in which the model says what it is.

Every code block is recorded with how it must behave (:class:`Check`): a function must pass its asserts,
a buggy one must fail them, a test block must pass against the function. :func:`build_corpus` runs
them all (:mod:`.verify`) and stops on the first one that does not behave.

Tasks whose :meth:`~Task.bucket` falls below ``heldout_percent`` never appear in training, in any form;
some of them become the held-out evaluation tasks, in the HumanEval format.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..eval.tasks import EvalTask, completion_request
from .families import FAMILIES
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
    ("Who are you?", "I am the starchat-tui demo model: a tiny model trained in a few minutes on templated coding "
                     "dialogues. I know a few dozen small Python functions. For real answers, run starchat-tui with "
                     "a real chat model, for example -m HuggingFaceH4/starchat-beta."),
    ("What can you do?", "I can write, fix, explain and test small Python functions: sums, counts, filters, string "
                         "checks and the like. Try: Write a Python function `add_5(x)` that returns x plus 5."),
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

    def answer_write(self) -> str:
        task = self.task
        return f"Here is `{task.name}`:\n\n{fence(task.code)}\n\n{task.fill(task.family.explain)}"

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
    "write": (0.42, DialogueWriter.write),
    "write+follow-up": (0.07, DialogueWriter.write_then_follow_up),
    "complete": (0.18, DialogueWriter.complete),
    "fix": (0.21, DialogueWriter.fix),
    "explain": (0.07, DialogueWriter.explain),
    "tests": (0.02, DialogueWriter.tests),
}
SMALL_TALK_SHARE = 0.03
SESSION_SHARE = 0.04
SESSION_KINDS = (("write", 0.5), ("fix", 0.3), ("explain", 0.2))
SESSION_SMALL_TALK = 0.25
SYSTEM_SHARE = 0.2
# Held-out evaluation tasks ask the way users do: mostly a request to write, some completions and fixes.
HELDOUT_KINDS = (("write", 0.6), ("complete", 0.2), ("fix", 0.2))


def _pick(rng: random.Random, weighted) -> Any:
    items = list(weighted)
    return rng.choices([item for item, _ in items], weights=[weight for _, weight in items])[0]


def _training_task(rng: random.Random, heldout_percent: int) -> Task:
    """A random task outside the held-out buckets."""
    while True:
        task = Task.sample(rng)
        if task.bucket() >= heldout_percent:
            return task


def small_talk(rng: random.Random) -> Dialogue:
    question, answer = rng.choice(SMALL_TALK)
    return Dialogue(_turns(question, answer), "small talk")


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
        if roll < SMALL_TALK_SHARE + SESSION_SHARE:
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
            make = KINDS[_pick(rng, SESSION_KINDS)][1] if kind == "session" else KINDS[kind][1]
            turns, more = make(DialogueWriter(task, rng))
            messages += turns
            checks += more
            keys.append(task.key)
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
    active = list(FAMILIES)
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


def build_corpus(size: int = 5000, *, seed: int = 0, heldout: int = 100, heldout_percent: int = 10,
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

    corpus = Corpus(dialogues, held, seed, held_keys)
    checks = corpus.checks + held_checks
    report(f"checking {len(checks):,} code blocks")
    failures = run_checks(checks)
    if failures:
        raise ValueError(f"{len(failures)} corpus code blocks misbehave; first: {failures[0]}")
    report(f"corpus: {len(dialogues):,} dialogues ({_describe(corpus.kinds())}), all {len(checks):,} code blocks "
           f"behave; {len(held)} held-out tasks")
    return corpus


def _describe(kinds: dict[str, int]) -> str:
    return ", ".join(f"{count:,} {kind}" for kind, count in kinds.items())
