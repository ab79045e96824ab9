"""Pairwise LLM-as-judge, as in the StarChat write-up: a judge model scores two assistants' answers from 1 to 8.

The judge sees the question and both answers and is asked for the two scores on the first line, then its
reasons. Judges, especially small local ones, do not always do as asked, so :func:`parse_scores` reads
the forms they actually write (``7 5``, ``7/8 and 5/8``, ``Assistant 1: 7`` on one line and ``Assistant 2:
5`` on another, ``**Scores:** [7, 5]``) and refuses the rest rather than guessing: an unreadable verdict
is counted as such, never as a tie.

Judges also favour whichever answer they read first, so by default every pair is judged twice, once in
each order, and the two verdicts are averaged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

MIN_SCORE, MAX_SCORE = 1, 8

JUDGE_SYSTEM = "You are a careful, impartial reviewer of answers to programming questions."

JUDGE_PROMPT = """\
Two AI assistants answered the same programming question. Judge how well each answer helps the person who \
asked: is it correct, relevant and clear, with enough detail and working code where code is needed?

[Question]
{question}

[Assistant 1's answer]
{first}
[End of Assistant 1's answer]

[Assistant 2's answer]
{second}
[End of Assistant 2's answer]

Give each assistant a score from 1 (useless) to 8 (excellent). On the first line write only the two \
scores, Assistant 1's then Assistant 2's, separated by a space, like: 6 3
Then explain your scores. Judge the content, not the length or the order of the answers."""

_NUMBER = r"(\d+(?:\.\d+)?)"
_SCORE = _NUMBER + r"(?:\s*(?:/|out of)\s*(\d+))?"
# "Assistant 1: 7", "Assistant 1 receives a score of 7/8", "Assistant 2 - 5", "**Assistant 1**: 7"
_LABELLED = re.compile(
    # The gap may not mention another assistant: "Assistant 1 and Assistant 2 both get 6" names no score for 1.
    r"assistant\s*\**\s*([12])\b(?:(?!assistant)[^0-9\n]){0,40}?" + _SCORE, re.IGNORECASE
)
# Two scores side by side. Not "/", which belongs to "7/8"; not ":", which follows a label.
_PAIR = re.compile(_SCORE + r"\s*(?:,|;|\band\b|\bvs\b\.?|\s)\s*" + _SCORE, re.IGNORECASE)


class JudgeParseError(ValueError):
    """The judge's output holds no readable pair of scores."""


def _score(value: str, scale: str | None) -> float:
    score = float(value)
    if scale is not None and int(scale) != MAX_SCORE:
        raise JudgeParseError(f"score {value}/{scale} is not on the 1-{MAX_SCORE} scale")
    if not MIN_SCORE <= score <= MAX_SCORE:
        raise JudgeParseError(f"score {value} is outside {MIN_SCORE}-{MAX_SCORE}")
    return score


def _labelled(text: str) -> tuple[float, float] | None:
    found: dict[str, tuple[str, str | None]] = {}
    for match in _LABELLED.finditer(text):
        found.setdefault(match.group(1), (match.group(2), match.group(3)))
    if "1" in found and "2" in found:
        return _score(*found["1"]), _score(*found["2"])
    return None


def _pair_in(line: str) -> tuple[float, float] | None:
    cleaned = re.sub(r"[*_`#\[\]()]", " ", line)
    cleaned = re.sub(r"^\s*(scores?|ratings?|verdict)\s*:?\s*", "", cleaned, flags=re.IGNORECASE)
    match = _PAIR.search(cleaned)
    if not match:
        return None
    return _score(match.group(1), match.group(2)), _score(match.group(3), match.group(4))


def parse_scores(text: str) -> tuple[float, float, str]:
    """``(score 1, score 2, reasons)`` from a judge's answer; JudgeParseError when there are none to read.

    The first line with a pair of scores wins, as the prompt asks for; otherwise scores labelled
    ``Assistant 1`` / ``Assistant 2`` anywhere. Scores off the 1-8 scale are errors, not clamped.
    """
    lines = [line for line in text.strip().splitlines() if line.strip()]
    if not lines:
        raise JudgeParseError("the judge answered nothing")
    problem: JudgeParseError | None = None
    for index, line in enumerate(lines[:3]):
        try:
            labelled = _labelled(line)
            pair = labelled or _pair_in(line)
        except JudgeParseError as error:
            problem = problem or error
            continue
        if pair:
            reasons = "\n".join(lines[index + 1:]).strip()
            return pair[0], pair[1], reasons
    try:
        labelled = _labelled(text)
    except JudgeParseError as error:
        raise error from None
    if labelled:
        return labelled[0], labelled[1], text.strip()
    if problem:
        raise problem
    raise JudgeParseError(f"no pair of 1-{MAX_SCORE} scores in the judge's answer: {lines[0][:80]!r}")


@dataclass
class Verdict:
    """One reading of one pair: the scores in the order shown to the judge, or why they are missing."""

    first: float | None
    second: float | None
    reasons: str
    raw: str
    error: str | None = None


@dataclass
class Comparison:
    """A question, both answers, and the judge's verdicts (one per order it was shown in)."""

    prompt: str
    answer_a: str
    answer_b: str
    verdicts_ab: list[Verdict] = field(default_factory=list)  # A shown first
    verdicts_ba: list[Verdict] = field(default_factory=list)  # B shown first

    def scores(self) -> tuple[float, float] | None:
        """A's and B's mean scores over the readable verdicts, or None if none was readable."""
        a_scores, b_scores = [], []
        for verdict in self.verdicts_ab:
            if verdict.error is None:
                a_scores.append(verdict.first)
                b_scores.append(verdict.second)
        for verdict in self.verdicts_ba:
            if verdict.error is None:
                a_scores.append(verdict.second)
                b_scores.append(verdict.first)
        if not a_scores:
            return None
        return sum(a_scores) / len(a_scores), sum(b_scores) / len(b_scores)

    @property
    def outcome(self) -> str:
        """``win``, ``tie`` or ``loss`` for A against B, or ``unparsed``."""
        scores = self.scores()
        if scores is None:
            return "unparsed"
        a, b = scores
        return "win" if a > b else "loss" if a < b else "tie"

    def as_dict(self) -> dict[str, Any]:
        scores = self.scores()
        verdicts = [("a_first", v) for v in self.verdicts_ab] + [("b_first", v) for v in self.verdicts_ba]
        return {
            "prompt": self.prompt, "answer_a": self.answer_a, "answer_b": self.answer_b,
            "score_a": scores[0] if scores else None, "score_b": scores[1] if scores else None,
            "outcome": self.outcome,
            "verdicts": [
                {"order": order, "first": v.first, "second": v.second, "reasons": v.reasons, "error": v.error, "raw": v.raw}
                for order, v in verdicts
            ],
        }


def judge_prompt(question: str, first: str, second: str) -> str:
    return JUDGE_PROMPT.format(question=question.strip(), first=first.strip() or "(no answer)",
                               second=second.strip() or "(no answer)")


def read_verdict(raw: str) -> Verdict:
    try:
        first, second, reasons = parse_scores(raw)
    except JudgeParseError as error:
        return Verdict(None, None, "", raw, str(error))
    return Verdict(first, second, reasons, raw)


def judge_pair(engine: Any, comparison: Comparison, *, both_orders: bool = True, max_new_tokens: int = 512) -> Comparison:
    """Ask the judge about ``comparison`` (in both orders unless told otherwise) and record its verdicts."""
    from ..chat.conversation import Conversation

    orders = [("ab", comparison.answer_a, comparison.answer_b)]
    if both_orders:
        orders.append(("ba", comparison.answer_b, comparison.answer_a))
    for order, first, second in orders:
        conversation = Conversation(system=JUDGE_SYSTEM)
        conversation.add("user", judge_prompt(comparison.prompt, first, second))
        for _ in engine.stream(conversation, temperature=0, max_new_tokens=max_new_tokens):
            pass
        verdict = read_verdict(conversation.messages[-1]["content"])
        (comparison.verdicts_ab if order == "ab" else comparison.verdicts_ba).append(verdict)
    return comparison


def tally(comparisons: list[Comparison]) -> dict[str, int]:
    counts = {"win": 0, "tie": 0, "loss": 0, "unparsed": 0}
    for comparison in comparisons:
        counts[comparison.outcome] += 1
    return counts
