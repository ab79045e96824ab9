"""Requests in everyday words: varied, answered under the name they ask for, and held out by construction."""

from __future__ import annotations

import random
import re

import pytest

from starchat_tui.demo.corpus import UNNAMED_ENTRY_POINT, build_corpus, natural_tasks
from starchat_tui.demo.families import FAMILIES
from starchat_tui.demo.phrasing import (
    DECLINE,
    HELD_OUT_FRAMES,
    TRAINING_FRAMES,
    default_name,
    held_out_name,
    natural_request,
    out_of_scope_request,
    user_names,
)
from starchat_tui.demo.tasks import Task
from starchat_tui.demo.verify import outcome

DEFINES = re.compile(r"^def (\w+)\(", re.MULTILINE)


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(1500, seed=5, heldout=20, natural=60, out_of_scope=15)


def _frame_pattern(frame: str) -> re.Pattern[str]:
    """A frame as a regular expression over a whole request, its slots as wildcards, case ignored."""
    parts = re.split(r"\{\w+\}", frame.rstrip(".?"))
    return re.compile(".+".join(re.escape(part) for part in parts), re.IGNORECASE | re.DOTALL)


def _user_messages(corpus) -> list[str]:
    return [m["content"] for d in corpus.dialogues for m in d.messages if m["role"] == "user"]


def test_no_training_request_is_worded_in_a_held_out_frame(corpus):
    held_out = [_frame_pattern(frame) for frame in HELD_OUT_FRAMES]
    natural = [d.messages for d in corpus.dialogues if d.kind == "natural"]
    assert len(natural) > 300
    for messages in natural:
        request = messages[0]["content"] if messages[0]["role"] == "user" else messages[1]["content"]
        assert not any(pattern.match(request) for pattern in held_out), request
    # ... while the held-out requests are (all but those with a typo in the frame), so the check looks at the right thing
    matched = [any(pattern.match(task.instruction) for pattern in held_out) for task in corpus.natural]
    assert sum(matched) >= 0.8 * len(matched)


def test_no_training_dialogue_uses_a_held_out_name(corpus):
    trained = {name for d in corpus.dialogues for m in d.messages for name in DEFINES.findall(m["content"])}
    assert len(trained) > 200  # names vary, so that the model learns to copy them rather than recall them
    assert not {name for name in trained if held_out_name(name)}
    named = {task.entry_point for task in corpus.natural} - {UNNAMED_ENTRY_POINT}
    assert len(named) > 20 and not named & trained


def test_held_out_out_of_scope_requests_are_not_in_training(corpus):
    trained = {text.lower() for text in _user_messages(corpus)}
    assert corpus.out_of_scope
    assert not {text.lower() for text in corpus.out_of_scope} & trained
    declines = [d for d in corpus.dialogues if d.kind == "decline"]
    assert declines and all(d.messages[-1]["content"] == DECLINE for d in declines)


def test_the_natural_held_out_set_asks_with_and_without_names(corpus):
    assert len(corpus.natural) == 60
    named = [task for task in corpus.natural if task.entry_point != UNNAMED_ENTRY_POINT]
    unnamed = [task for task in corpus.natural if task.entry_point == UNNAMED_ENTRY_POINT]
    assert len(named) > 20 and len(unnamed) > 10
    for task in corpus.natural:
        assert task.instruction and "```" not in task.instruction
    for task in named:
        assert task.entry_point in task.instruction


def test_an_unnamed_request_is_checked_on_whatever_function_the_answer_defines():
    tasks, checks = natural_tasks(random.Random(0), 40)
    index = next(i for i, task in enumerate(tasks) if task.entry_point == UNNAMED_ENTRY_POINT)
    reference = checks[index].program  # the family's own function, then the task's test and check()
    name = DEFINES.search(reference).group(1)
    assert outcome(reference) is None
    assert outcome(reference.replace(f"def {name}(", "def whatever_the_model_chose(")) is None
    test = tasks[index].test + f"\ncheck({UNNAMED_ENTRY_POINT})\n"
    assert outcome("def whatever_the_model_chose(*args):\n    return 'not it'\n\n" + test) is not None
    assert outcome(test) is not None  # an answer that defines no function fails


def test_requests_vary_in_the_ways_people_write():
    rng = random.Random(0)
    requests = [natural_request(Task.sample(rng), rng, held_out=False) for _ in range(400)]
    texts = [request.text for request in requests]
    assert any(text == text.lower() for text in texts)  # all lower case
    assert any("`" in text for text in texts) and any(not request.named for request in requests)
    assert any("python" in text.lower() for text in texts) and any("python" not in text.lower() for text in texts)
    assert any("example" in text.lower() or "e.g." in text for text in texts)
    assert len({text.split()[0].lower() for text in texts}) >= 10  # many openings, not one template
    for request in requests:
        if request.named:
            assert request.task.name in request.text
        else:
            assert request.task.name == default_name(request.task.family)


def test_an_unnamed_request_is_answered_by_the_familys_own_function():
    rng = random.Random(3)
    for family in FAMILIES:
        task = Task.sample(rng, family)
        for _ in range(20):
            request = natural_request(task, rng, held_out=False)
            program = f"{request.task.code}\n\n{request.task.asserts(request.task.cases(rng))}\n"
            assert outcome(program) is None, (request.text, program)


def test_names_users_give_split_both_ways_and_family_names_stay_in_training():
    for family in FAMILIES:
        names = user_names(family)
        assert any(held_out_name(name) for name in names) and not all(held_out_name(name) for name in names)
        assert not any(held_out_name(name) for name in family.names)


def test_frames_are_disjoint_and_out_of_scope_requests_come_from_both_sides():
    assert not set(TRAINING_FRAMES) & set(HELD_OUT_FRAMES)
    rng = random.Random(1)
    training = {out_of_scope_request(rng, held_out=False).lower() for _ in range(300)}
    held_out = {out_of_scope_request(rng, held_out=True).lower() for _ in range(300)}
    assert training and held_out and not training & held_out
