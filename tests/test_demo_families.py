"""The demo families: everyday ``natural`` phrasings, and bodies, references and bugs that agree."""

from __future__ import annotations

import random
import string

import pytest

from starchat_tui.demo.families import FAMILIES, Family
from starchat_tui.demo.tasks import Task, third_person

CONSTANT_SLOTS = {"k", "lo", "hi", "c", "w"}
# The families the held-out evaluation was built on, in their order; new ones are appended after them.
ORIGINAL_KEYS = (
    "add", "multiply", "subtract", "divisible", "power", "clamp", "between", "factorial", "triangle", "digit_sum",
    "fibonacci", "even", "count_above", "keep_above", "scale_all", "shift_all", "sum_squares", "evens", "average",
    "largest", "first_k", "unique", "count_value", "product", "spread", "reverse", "palindrome", "count_letter",
    "vowels", "repeat", "prefix", "starts_with", "word_count", "upper", "larger", "gcd",
)
NEW_KEYS = [family.key for family in FAMILIES[len(ORIGINAL_KEYS):]]


def slots(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def run(task: Task, code: str, arguments: tuple):
    namespace: dict = {}
    exec(compile(code, task.key, "exec"), namespace)  # our own templates
    return namespace[task.name](*[list(a) if isinstance(a, list) else a for a in arguments])


def test_the_original_families_keep_their_order_and_keys_are_unique():
    keys = [family.key for family in FAMILIES]
    assert tuple(keys[: len(ORIGINAL_KEYS)]) == ORIGINAL_KEYS
    assert len(set(keys)) == len(keys)
    assert len(NEW_KEYS) >= 8


def test_natural_is_optional_and_comes_after_the_positional_fields():
    bare = Family("x", ("f",), "number", lambda rng: {}, ("return {a}",), "return {a}", lambda p: lambda a: a,
                  lambda rng, p: [(1,)], "return 0", "it returns 0", "It returns {a}.")
    assert bare.natural == () and bare.doc == ""


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_every_family_has_natural_phrases_that_name_every_constant(family):
    assert 4 <= len(family.natural) <= 6
    assert len(set(family.natural)) == len(family.natural)
    assert not set(family.natural) & set(family.asks)
    used = slots(family.body) & CONSTANT_SLOTS
    allowed = set().union(*(slots(ask) for ask in family.asks))
    for phrase in family.natural:
        assert used <= slots(phrase), (phrase, used)
        assert slots(phrase) <= allowed, phrase
        assert "a" in slots(phrase) and ("b" in slots(phrase)) == (family.arg_kind == "pair"), phrase
        assert phrase[0].islower() and not phrase.endswith((".", "?")), phrase
        assert len(phrase.split()) <= 16, phrase


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_natural_phrases_conjugate_to_a_third_person_sentence(family):
    for index, phrase in enumerate(family.natural):
        task = Task.sample(random.Random(index), family)
        sentence = third_person(task.fill(phrase))
        verb = sentence.split()[0]
        assert verb.endswith("s"), sentence
        assert verb not in {"dos", "gos", "haves", "bes"} and not verb.endswith("sss"), sentence
        assert "{" not in sentence and "}" not in sentence
        # a second verb after "and" would stay in the infinitive ("adds 3 to x and return ...")
        assert " and return " not in sentence and " and give " not in sentence, sentence


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_body_agrees_with_reference_and_the_bug_fails_an_input(family):
    rng = random.Random(1)
    for _ in range(3):
        task = Task.sample(rng, family)
        cases = task.cases(rng)
        for arguments, expected in cases:
            assert run(task, task.code, arguments) == expected, (task.key, arguments)
        wrong = 0
        for arguments, expected in cases:
            try:
                wrong += run(task, task.buggy_code, arguments) != expected
            except Exception:  # noqa: BLE001 - a crash is a wrong answer too
                wrong += 1
        assert wrong, task.key


def test_new_family_bodies_are_short():
    for family in FAMILIES:
        if family.key in NEW_KEYS:
            assert len(family.body.split("\n")) <= 5, family.key
            assert len(family.names) >= 2 and all("{" not in name for name in family.names)
