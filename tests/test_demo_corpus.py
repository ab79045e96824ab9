"""The demo corpus: every code block in it behaves, the held-out split is really held out, and it is seeded."""

from __future__ import annotations

import hashlib
import json
import random
import re

import pytest

from starchat_tui.demo import families as families_module
from starchat_tui.demo.corpus import KINDS, Check, DialogueWriter, build_corpus
from starchat_tui.demo.families import FAMILIES, Family
from starchat_tui.demo.tasks import Task, third_person
from starchat_tui.demo.verify import outcome, run_checks
from starchat_tui.eval.extract import code_blocks

FENCE = re.compile(r"```python\n(.*?)\n```", re.DOTALL)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(900, seed=3, heldout=40)


def test_every_code_block_in_the_corpus_passes_its_checks(corpus):
    checks = corpus.checks
    assert len(checks) > len(corpus.dialogues)  # most dialogues carry more than one block
    assert run_checks(checks) == []
    # Functions must pass and buggy code must fail: both kinds are really there.
    assert {check.must_pass for check in checks} == {True, False}


def test_every_fenced_block_of_every_dialogue_is_covered_by_a_check(corpus):
    for dialogue in corpus.dialogues:
        programs = [check.program for check in dialogue.checks]
        for message in dialogue.messages:
            for block in FENCE.findall(message["content"]):
                assert any(block in program for program in programs), (dialogue.kind, block)


def test_assistant_code_blocks_are_valid_python(corpus):
    """What the model is taught to write compiles on its own (test blocks need their function to run)."""
    for dialogue in corpus.dialogues:
        for message in dialogue.messages:
            if message["role"] != "assistant":
                continue
            for _, code in code_blocks(message["content"]):
                compile(code, "<answer>", "exec")


def test_the_corpus_has_every_kind_of_dialogue_and_multi_turn_ones(corpus):
    kinds = corpus.kinds()
    assert set(KINDS) <= set(kinds)
    assert "small talk" in kinds and "session" in kinds
    assert max(len(d.messages) for d in corpus.dialogues) >= 6
    assert any(len(d.messages) >= 4 for d in corpus.dialogues)
    assert any(d.messages[0]["role"] == "system" for d in corpus.dialogues)
    assert {d.messages[-1]["role"] for d in corpus.dialogues} == {"assistant"}


def test_heldout_tasks_never_appear_in_training(corpus):
    training = " ".join(m["content"] for d in corpus.dialogues for m in d.messages)
    train_keys = {key for d in corpus.dialogues for key in d.tasks}
    assert len(corpus.heldout) == 40 and len(set(corpus.heldout_keys)) == 40
    assert not train_keys & set(corpus.heldout_keys)
    # The split is a property of the task, so no future training set can take a held-out task either.
    assert all(int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) % 100 >= 10 for key in train_keys)
    for task in corpus.heldout:
        assert task.task_id.startswith("demo/")
        assert "def check(candidate)" in task.test
        assert task.user_message() not in training


def test_heldout_tests_reject_a_wrong_answer(corpus):
    for task in corpus.heldout:
        wrong = f"{task.prompt}    return None\n\n{task.test}\ncheck({task.entry_point})\n"
        assert outcome(wrong) is not None


def test_the_corpus_is_the_same_for_the_same_seed_and_differs_for_another():
    first = build_corpus(150, seed=11, heldout=10)
    again = build_corpus(150, seed=11, heldout=10)
    other = build_corpus(150, seed=12, heldout=10)

    def dump(corpus):
        return json.dumps([d.messages for d in corpus.dialogues]) + json.dumps([t.to_json() for t in corpus.heldout])

    assert dump(first) == dump(again)
    assert dump(first) != dump(other)


def test_a_template_that_drifts_from_its_reference_stops_the_build(monkeypatch):
    wrong = Family(
        "off_by_one", ("inc",), "number", lambda rng: {}, ("return {a} plus one",), "return {a} + 2",
        lambda p: lambda a: a + 1, lambda rng, p: [(1,), (5,)], "return {a}", "it forgets to add",
        "It adds one.",
    )
    monkeypatch.setattr("starchat_tui.demo.corpus.FAMILIES", (wrong,))
    monkeypatch.setattr("starchat_tui.demo.tasks.FAMILIES", (wrong,))
    with pytest.raises(ValueError, match="misbehave.*off_by_one"):
        build_corpus(20, seed=0, heldout=0)


def test_a_bug_the_tests_cannot_see_stops_the_build():
    harmless = Family(
        "harmless", ("double",), "number", lambda rng: {}, ("return {a} times two",), "return {a} * 2",
        lambda p: lambda a: a * 2, lambda rng, p: [(3,)], "return {a} + {a}", "it adds",
        "It doubles.",
    )
    task = Task(harmless, "double", ("x",), ())
    writer = DialogueWriter(task, random.Random(0))
    with pytest.raises(ValueError, match="bug passes every test case"):
        writer.fix()


def test_every_family_fills_its_templates_for_every_parameter_kind():
    rng = random.Random(5)
    for family in FAMILIES:
        for _ in range(5):
            task = Task.sample(rng, family)
            assert task.name.isidentifier()
            assert "{" not in task.code and "{" not in task.ask(0) and "{" not in task.doc
            checks = [Check(f"{task.code}\n\n{task.asserts(task.cases(rng))}\n", True, task.key)]
            assert run_checks(checks) == [], task.key
    assert families_module.family("add").key == "add"


def test_third_person_verbs():
    assert third_person("return x") == "returns x"
    assert third_person("multiply each") == "multiplies each"
    assert third_person("add 5 to x") == "adds 5 to x"
    assert third_person("check whether") == "checks whether"
    assert third_person("keep only") == "keeps only"


def test_verify_reports_failures_syntax_errors_and_loops(monkeypatch):
    assert outcome("assert 1 == 1") is None
    assert outcome("assert 1 == 2").startswith("AssertionError")
    assert outcome("def f(:\n  pass").startswith("SyntaxError")
    monkeypatch.setattr("starchat_tui.demo.verify.TIME_LIMIT_S", 0.2)
    assert outcome("while True:\n    pass").startswith("timed out")
    # A buggy block that does not even parse is not a valid "fix this" example.
    problems = run_checks([Check("def f(:\n", False, "bad bug"), Check("assert False", False, "good bug")])
    assert len(problems) == 1 and problems[0].startswith("bad bug")
