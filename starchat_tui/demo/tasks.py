"""One task: a family with its slots filled, and everything the corpus and the evaluation say about it."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .families import FAMILIES, Family, arg_choices


def third_person(phrase: str) -> str:
    """``return x plus 7`` -> ``returns x plus 7``: the first verb for "a function that ..."."""
    verb, _, rest = phrase.partition(" ")
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        verb = verb[:-1] + "ies"
    elif verb.endswith(("s", "sh", "ch", "x")):
        verb += "es"
    else:
        verb += "s"
    return f"{verb} {rest}" if rest else verb


def stable_percent(text: str) -> int:
    """0-99 from ``text``, the same on every run and machine (unlike hash()): what the held-out splits use."""
    return int(hashlib.sha256(text.encode()).hexdigest()[:8], 16) % 100


def indent(text: str, spaces: int = 4) -> str:
    pad = " " * spaces
    return "\n".join(pad + line if line else line for line in text.split("\n"))


@dataclass(frozen=True)
class Task:
    """A family with a function name, parameter names and constants chosen."""

    family: Family
    name_template: str
    args: tuple[str, ...]
    constants: tuple[tuple[str, Any], ...]

    @classmethod
    def sample(cls, rng: random.Random, family: Family | None = None) -> Task:
        family = family or rng.choice(FAMILIES)
        name = rng.choice(list(family.names))
        args = tuple(rng.choice(list(arg_choices(family.arg_kind))))
        constants = tuple(sorted(family.constants(rng).items()))
        return cls(family, name, args, constants)

    @cached_property
    def slots(self) -> dict[str, Any]:
        values: dict[str, Any] = dict(self.constants)
        values["a"] = self.args[0]
        if len(self.args) > 1:
            values["b"] = self.args[1]
        values["f"] = self.name_template.format(**values)
        return values

    @property
    def key(self) -> str:
        """What makes two tasks the same task; the held-out split is decided on it."""
        constants = ",".join(f"{k}={v}" for k, v in self.constants)
        return f"{self.family.key}|{self.name}|{','.join(self.args)}|{constants}"

    def bucket(self) -> int:
        """0-99, stable across runs and machines, for splitting."""
        return stable_percent(self.key)

    def fill(self, template: str) -> str:
        return template.format(**self.slots)

    @property
    def name(self) -> str:
        return self.slots["f"]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.constants)

    @property
    def signature(self) -> str:
        return f"def {self.name}({', '.join(self.args)}):"

    @property
    def arg_text(self) -> str:
        return " and ".join(self.args)

    def ask(self, index: int = 0) -> str:
        asks = self.family.asks
        return self.fill(asks[index % len(asks)])

    @property
    def doc(self) -> str:
        if self.family.doc:
            return self.fill(self.family.doc)
        sentence = self.ask(0)
        return sentence[0].upper() + sentence[1:] + "."

    @property
    def code(self) -> str:
        return f"{self.signature}\n{indent(self.fill(self.family.body))}"

    @property
    def buggy_code(self) -> str:
        return f"{self.signature}\n{indent(self.fill(self.family.bug))}"

    @property
    def completion_prompt(self) -> str:
        """The HumanEval ``prompt``: the signature and a docstring, for the model to complete."""
        return f'{self.signature}\n    """{self.doc}"""\n'

    @property
    def completed_code(self) -> str:
        return f'{self.signature}\n    """{self.doc}"""\n{indent(self.fill(self.family.body))}'

    def cases(self, rng: random.Random) -> list[tuple[tuple, Any]]:
        """(arguments, right answer) pairs from the family's reference implementation."""
        reference = self.family.reference(self.params)
        seen, cases = set(), []
        for arguments in self.family.inputs(rng, self.params):
            marker = repr(arguments)
            if marker in seen:
                continue
            seen.add(marker)
            cases.append((arguments, reference(*[_copy(a) for a in arguments])))
        return cases

    def call(self, arguments: tuple) -> str:
        return f"{self.name}({', '.join(repr(a) for a in arguments)})"

    def asserts(self, cases: list[tuple[tuple, Any]], function: str | None = None) -> str:
        """``assert name(args) == answer`` lines; ``function`` replaces the name (``candidate``)."""
        lines = []
        for arguments, expected in cases:
            call = self.call(arguments) if function is None else f"{function}({', '.join(repr(a) for a in arguments)})"
            lines.append(f"assert {call} == {expected!r}")
        return "\n".join(lines)

    def check_function(self, cases: list[tuple[tuple, Any]]) -> str:
        """A HumanEval ``test``: ``check(candidate)`` asserting every case."""
        return "def check(candidate):\n" + indent(self.asserts(cases, "candidate")) + "\n"


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value
