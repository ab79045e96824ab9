"""The task families the demo corpus is made of: small Python functions, each with its tests and a bug.

A family is a template with slots. ``{f}`` is the function name, ``{a}`` (and ``{b}``) the parameter
names, ``{k}``, ``{lo}``, ``{hi}``, ``{c}`` and ``{w}`` constants drawn per task. One task is one family
with its slots filled; the same task appears in the corpus as a request to write the function, a bug to
fix, code to explain, a docstring to complete, and tests to write.

Every family carries a reference implementation (plain Python, separate from the template) and test
inputs. The corpus builder runs each code block against the reference's answers, so a template that
drifts from what its words promise stops the build instead of teaching the model a wrong answer.

The slots are what a tiny model can learn to copy: the family is recognised from the wording, and the
names and constants are copied from the request. Names come from a short list per family and never
hold a constant (``increase``, not ``add_46``), so a name is a few common tokens and a constant is
copied once, into the body, instead of into a rarely seen name as well. A held-out
task is a combination of family, name, parameters and constants that never appears in training.
"""

from __future__ import annotations

import calendar
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

NUMBER_ARGS = ("x", "n", "num", "value", "number")
LIST_ARGS = ("nums", "values", "items", "xs", "numbers", "data")
TEXT_ARGS = ("s", "text", "word", "line", "string")
PAIR_ARGS = (("a", "b"), ("x", "y"), ("m", "n"), ("first", "second"))
PREFIXES = ("pre", "un", "re", "sub", "over", "mini", "mega", "super", "anti", "co")
LETTERS = "abcdefghijklmnoprstuw"
WORDS = (
    "apple", "banana", "level", "kayak", "python", "code", "radar", "tree", "stack", "queue", "hello",
    "world", "noon", "data", "list", "loop", "refer", "civic", "model", "token", "", "a", "abba",
)


@dataclass(frozen=True)
class Family:
    """One kind of function, with everything needed to ask for it, write it, break it and test it.

    ``ask`` phrases start with a verb in the infinitive ("return {a} plus {k}"); ``body`` is the
    function body, indented by four spaces per level after the first line; ``reference(params)``
    returns a plain callable giving the right answers; ``inputs(rng, params)`` gives argument tuples
    that must include the cases the ``bug`` gets wrong.

    ``natural`` phrases are more asks in everyday wording ("get the largest element in {a}"). Like
    ``asks`` they start with an infinitive that :func:`~.tasks.third_person` conjugates, name every
    constant the body uses, and read well whether ``{a}`` is a parameter name ("nums") or a noun
    phrase ("a list of numbers"); a second verb joined by "and" would stay unconjugated, so none has one.
    """

    key: str
    names: Sequence[str]
    arg_kind: str  # "number", "list", "text" or "pair"
    constants: Callable[[random.Random], dict[str, Any]]
    asks: Sequence[str]
    body: str
    reference: Callable[[dict[str, Any]], Callable[..., Any]]
    inputs: Callable[[random.Random, dict[str, Any]], list[tuple]]
    bug: str  # a wrong body, and below, how to say what is wrong with it
    bug_reason: str
    explain: str  # how the body works, one or two sentences
    doc: str = ""  # the docstring of a completion prompt; default: the first ask as a sentence
    natural: tuple[str, ...] = ()  # more asks, worded the way everyday users write requests
    tags: tuple[str, ...] = field(default_factory=tuple)


def _none(rng: random.Random) -> dict[str, Any]:
    return {}


def _k(low: int, high: int) -> Callable[[random.Random], dict[str, Any]]:
    return lambda rng: {"k": rng.randint(low, high)}


def _range(rng: random.Random) -> dict[str, Any]:
    low = rng.randint(-20, 40)
    return {"lo": low, "hi": low + rng.randint(3, 60)}


def _letter(rng: random.Random) -> dict[str, Any]:
    return {"c": rng.choice(LETTERS)}


def _prefix(rng: random.Random) -> dict[str, Any]:
    return {"w": rng.choice(PREFIXES)}


def _numbers(low: int, high: int, *edges: int) -> Callable[[random.Random, dict], list[tuple]]:
    return lambda rng, p: [(e,) for e in edges] + [(rng.randint(low, high),) for _ in range(4)]


def _lists(rng: random.Random, p: dict[str, Any]) -> list[tuple]:
    """Lists around the constant ``k`` (when there is one), so that > and >= tell apart."""
    k = p.get("k", 5)
    cases = [([k, k + 1, k - 1, 2 * k],), ([0, 1, 2, 3, 4, 5, 6],), ([k],), ([],)]
    for _ in range(3):
        cases.append(([rng.randint(-10, 2 * abs(k) + 10) for _ in range(rng.randint(1, 7))],))
    return cases


def _nonempty_lists(rng: random.Random, p: dict[str, Any]) -> list[tuple]:
    return [case for case in _lists(rng, p) if case[0]] + [([3, 3, 8, -2],), ([7, 1],)]


def _texts(rng: random.Random, p: dict[str, Any]) -> list[tuple]:
    extra = [p.get("w", "") + "apple", "tree" + p.get("w", ""), p.get("c", "x") * 2 + "yz" + p.get("c", "x")]
    return [(w,) for w in ("level", "hello world", "", "a b  c", "Abba", *extra, rng.choice(WORDS) + " " + rng.choice(WORDS))]


def _pairs(rng: random.Random, p: dict[str, Any]) -> list[tuple]:
    return [(3, 3), (12, 18), (7, 2), (2, 7), (0, 5)] + [(rng.randint(1, 60), rng.randint(1, 60)) for _ in range(3)]


def _vowels(text: str) -> int:
    return sum(1 for ch in text if ch in "aeiou")


def _unique(values: list) -> list:
    seen: list = []
    for value in values:
        if value not in seen:
            seen.append(value)
    return seen


def _product(values: list) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def _factorial(n: int) -> int:
    return _product(list(range(1, n + 1)))


def _fibonacci(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


def _smallest(values: list) -> int:
    return sorted(values)[0]


def _largest_even(values: list) -> int | None:
    evens = sorted(v for v in values if v % 2 == 0)
    return evens[-1] if evens else None


def _is_prime(n: int) -> bool:
    return n >= 2 and all(n % d for d in range(2, int(n ** 0.5) + 1))


def _title(text: str) -> str:
    """str.title for ASCII: a letter is capitalised when it follows a non-letter, lowered otherwise."""
    return "".join(ch.upper() if i == 0 or not text[i - 1].isalpha() else ch.lower() for i, ch in enumerate(text))


def _char_counts(text: str) -> dict[str, int]:
    return dict(Counter(text))


FAMILIES: tuple[Family, ...] = (
    # Numbers
    Family(
        "add", ("increase", "add_offset", "plus_const"), "number", _k(2, 99),
        ("return {a} plus {k}", "add {k} to {a} and return the result"),
        "return {a} + {k}", lambda p: lambda a: a + p["k"], _numbers(-50, 50, 0),
        "return {a} - {k}", "it subtracts {k} from {a} instead of adding it",
        "It adds {k} to {a} with the + operator and returns the sum.",
        natural=(
            "increase {a} by {k}", "return the sum of {a} and {k}", "give back {a} with {k} added to it",
            "calculate {a} plus {k}", "get {a} plus {k}",
        ),
    ),
    Family(
        "multiply", ("multiply", "times", "scaled"), "number", _k(2, 99),
        ("return {a} multiplied by {k}", "multiply {a} by {k} and return the product"),
        "return {a} * {k}", lambda p: lambda a: a * p["k"], _numbers(-50, 50, 1),
        "return {a} + {k}", "it adds {k} to {a} instead of multiplying by it",
        "It multiplies {a} by {k} with the * operator.",
        natural=(
            "return {a} times {k}", "multiply {a} by {k}", "give back the product of {a} and {k}",
            "scale {a} by a factor of {k}", "calculate {k} times {a}",
        ),
    ),
    Family(
        "subtract", ("decrease", "subtract", "minus"), "number", _k(2, 99),
        ("return {a} minus {k}", "subtract {k} from {a} and return the result"),
        "return {a} - {k}", lambda p: lambda a: a - p["k"], _numbers(-50, 50, 0),
        "return {k} - {a}", "it computes {k} minus {a}, the operands are the wrong way round",
        "It subtracts {k} from {a} and returns the difference.",
        natural=(
            "take {k} away from {a}", "return {a} with {k} subtracted", "decrease {a} by {k}",
            "give back {a} minus {k}", "calculate {a} minus {k}",
        ),
    ),
    Family(
        "divisible", ("is_multiple", "divisible", "is_divisible"), "number", _k(2, 19),
        ("return True when {a} is divisible by {k}", "check whether {a} is a multiple of {k}"),
        "return {a} % {k} == 0", lambda p: lambda a: a % p["k"] == 0, lambda rng, p: [(0,), (p["k"],), (p["k"] * 3,), (1,)] + [(rng.randint(-90, 90),) for _ in range(3)],
        "return {a} // {k} == 0", "it uses floor division (//) where it needs the remainder (%)",
        "The remainder {a} % {k} is 0 exactly when {a} is a multiple of {k}.",
        natural=(
            "check if {a} is divisible by {k}", "tell whether {a} divides evenly by {k}",
            "see if {a} is a multiple of {k}", "return True if {a} is a multiple of {k}, else False",
            "test if {a} is evenly divisible by {k}",
        ),
    ),
    Family(
        "power", ("power", "raise_power", "to_power"), "number", _k(2, 6),
        ("return {a} raised to the power {k}", "compute {a} to the power of {k}"),
        "return {a} ** {k}", lambda p: lambda a: a ** p["k"], _numbers(-9, 9, 3),
        "return {a} * {k}", "it multiplies by {k} instead of raising to the power {k}",
        "The ** operator raises {a} to the power {k}.",
        natural=(
            "raise {a} to the power of {k}", "calculate {a} to the power {k}",
            "give back {a} raised to the power {k}", "return {a} to the power of {k}", "get {a} raised to {k}",
        ),
    ),
    Family(
        "clamp", ("clamp", "limit", "bound"), "number", _range,
        ("return {a} limited to the range {lo} to {hi}", "clamp {a} between {lo} and {hi}"),
        "return max({lo}, min({hi}, {a}))", lambda p: lambda a: max(p["lo"], min(p["hi"], a)),
        lambda rng, p: [(p["lo"] - 5,), (p["hi"] + 5,), (p["lo"] + 1,)] + [(rng.randint(-80, 120),) for _ in range(3)],
        "return min({lo}, max({hi}, {a}))", "min and max are swapped, so it always returns {lo}",
        "min caps {a} at {hi}, then max raises it to at least {lo}.",
        natural=(
            "keep {a} between {lo} and {hi}", "limit {a} so it stays between {lo} and {hi}",
            "force {a} into the range {lo} to {hi}", "return {a}, but no lower than {lo} and no higher than {hi}",
            "restrict {a} to the interval from {lo} to {hi}",
        ),
    ),
    Family(
        "between", ("is_between", "in_range", "within"), "number", _range,
        ("return True when {a} is between {lo} and {hi} inclusive", "check whether {a} lies from {lo} to {hi}, both ends included"),
        "return {lo} <= {a} <= {hi}", lambda p: lambda a: p["lo"] <= a <= p["hi"],
        lambda rng, p: [(p["lo"],), (p["hi"],), (p["lo"] - 1,), (p["hi"] + 1,)] + [(rng.randint(-80, 120),) for _ in range(2)],
        "return {lo} < {a} < {hi}", "it uses < where the ends must be included, so {lo} and {hi} give False",
        "A chained comparison checks both ends at once, and <= includes them.",
        natural=(
            "check if {a} is in the range {lo} to {hi}, inclusive",
            "tell whether {a} is between {lo} and {hi}, ends included",
            "return True if {a} is at least {lo} and at most {hi}",
            "see if {a} falls between {lo} and {hi} inclusive",
            "test whether {a} is from {lo} to {hi}, both included",
        ),
    ),
    Family(
        "factorial", ("factorial", "fact"), "number", _none,
        ("return the factorial of {a}", "compute {a}! (the factorial of {a})"),
        "result = 1\nfor i in range(2, {a} + 1):\n    result *= i\nreturn result",
        lambda p: _factorial, _numbers(0, 10, 0, 1, 5),
        "result = 1\nfor i in range(2, {a}):\n    result *= i\nreturn result",
        "range(2, {a}) stops before {a}, so the last factor is missing",
        "It multiplies result by every whole number from 2 up to {a}; the factorial of 0 and 1 is 1.",
        natural=(
            "calculate the factorial of {a}", "find the factorial of {a}",
            "multiply all the whole numbers from 1 to {a}", "give back the factorial of {a}",
            "get the product of 1 through {a}",
        ),
    ),
    Family(
        "triangle", ("sum_to", "sum_up_to", "triangle"), "number", _none,
        ("return the sum of the whole numbers from 1 to {a}", "add up every number from 1 to {a}"),
        "return sum(range(1, {a} + 1))", lambda p: lambda a: sum(range(1, a + 1)), _numbers(0, 60, 0, 1, 4),
        "return sum(range(1, {a}))", "range(1, {a}) stops before {a}, so {a} itself is never added",
        "range(1, {a} + 1) yields 1 to {a} and sum adds them up.",
        natural=(
            "add up all the numbers from 1 to {a}", "find the sum of 1 through {a}",
            "return the total of all integers from 1 up to {a}", "sum the numbers 1 to {a}",
            "calculate the sum of every whole number up to {a}",
        ),
    ),
    Family(
        "digit_sum", ("digit_sum", "sum_digits", "add_digits"), "number", _none,
        ("return the sum of the digits of {a}", "add up the decimal digits of {a}"),
        "return sum(int(d) for d in str({a}))", lambda p: lambda a: sum(int(d) for d in str(a)), _numbers(0, 99999, 0, 7, 1234),
        "return sum(d for d in str({a}))", "it adds the digit characters as text; each digit needs int() first",
        "str({a}) gives the digits as characters; int turns each back into a number and sum adds them.",
        doc="Return the sum of the decimal digits of a non-negative {a}.",
        natural=(
            "add together the digits of {a}", "find the sum of all digits in {a}",
            "calculate the total of the digits of {a}", "sum up the digits in {a}", "return the digit sum of {a}",
        ),
    ),
    Family(
        "fibonacci", ("fibonacci", "fib", "nth_fibonacci"), "number", _none,
        ("return the {a}-th Fibonacci number", "compute Fibonacci number {a}, starting from fib(0) = 0"),
        "a, b = 0, 1\nfor _ in range({a}):\n    a, b = b, a + b\nreturn a",
        lambda p: _fibonacci, _numbers(0, 20, 0, 1, 2, 10),
        "a, b = 1, 1\nfor _ in range({a}):\n    a, b = b, a + b\nreturn a",
        "it starts from 1, 1 instead of 0, 1, so every result is one step ahead",
        "a and b walk along the sequence; after {a} steps a holds the answer.",
        natural=(
            "compute the Fibonacci number for {a}, with fib(0) = 0 and fib(1) = 1",
            "calculate fib of {a}, where fib(0) = 0 and fib(1) = 1",
            "find the Fibonacci number for {a} in the sequence 0, 1, 1, 2, 3, 5",
            "get the Fibonacci number for {a}, where the sequence starts 0, 1",
            "work out the Fibonacci number for {a}, starting from 0 and 1",
        ),
    ),
    Family(
        "even", ("is_even", "even"), "number", _none,
        ("return True when {a} is even", "check whether {a} is an even number"),
        "return {a} % 2 == 0", lambda p: lambda a: a % 2 == 0, _numbers(-30, 30, 0, 1, 2, 7),
        "return {a} % 2 == 1", "it tests for a remainder of 1, which is the test for odd numbers",
        "Even numbers leave no remainder when divided by 2.",
        natural=(
            "check if {a} is even", "tell whether {a} is an even number", "return True if {a} is divisible by 2",
            "see if {a} is even", "test whether {a} is a multiple of 2",
        ),
    ),
    # Lists
    Family(
        "count_above", ("count_above", "count_over", "how_many_above"), "list", _k(0, 60),
        ("return how many numbers in {a} are greater than {k}", "count the values in {a} that are above {k}"),
        "return sum(1 for v in {a} if v > {k})", lambda p: lambda a: sum(1 for v in a if v > p["k"]), _lists,
        "return sum(1 for v in {a} if v >= {k})", "it uses >=, so values equal to {k} are counted too",
        "The generator yields 1 for each value above {k} and sum counts them.",
        natural=(
            "count how many values in {a} are bigger than {k}", "find how many elements of {a} are greater than {k}",
            "tell how many items of {a} are above {k}", "return the count of elements in {a} that exceed {k}",
            "get how many entries in {a} are more than {k}",
        ),
    ),
    Family(
        "keep_above", ("keep_above", "filter_over", "values_above"), "list", _k(0, 60),
        ("return the numbers in {a} that are greater than {k}", "keep only the values in {a} above {k}"),
        "return [v for v in {a} if v > {k}]", lambda p: lambda a: [v for v in a if v > p["k"]], _lists,
        "return [v for v in {a} if v < {k}]", "the comparison is the wrong way round: it keeps the values below {k}",
        "The list comprehension keeps each value v for which v > {k} holds, in order.",
        natural=(
            "filter {a} down to the numbers greater than {k}", "return a list of the values in {a} bigger than {k}",
            "get all the elements of {a} that are above {k}", "give back only the items in {a} larger than {k}",
            "select the values from {a} that exceed {k}",
        ),
    ),
    Family(
        "scale_all", ("multiply_each", "scale_all", "times_each"), "list", _k(2, 20),
        ("return a list with every number in {a} multiplied by {k}", "multiply each value in {a} by {k}"),
        "return [v * {k} for v in {a}]", lambda p: lambda a: [v * p["k"] for v in a], _lists,
        "return [v + {k} for v in {a}]", "it adds {k} to each value instead of multiplying",
        "The list comprehension builds a new list of v * {k} for every v.",
        natural=(
            "multiply every element of {a} by {k}", "return a new list with each value in {a} times {k}",
            "scale all the values in {a} by {k}", "give back {a} with every item multiplied by {k}",
            "get each item in {a} multiplied by {k}, as a list",
        ),
    ),
    Family(
        "shift_all", ("add_to_all", "shift_all", "plus_each"), "list", _k(1, 50),
        ("return a list with {k} added to every number in {a}", "add {k} to each value in {a}"),
        "return [v + {k} for v in {a}]", lambda p: lambda a: [v + p["k"] for v in a], _lists,
        "return [v - {k} for v in {a}]", "it subtracts {k} from each value instead of adding it",
        "The list comprehension builds a new list of v + {k} for every v.",
        natural=(
            "add {k} to every element of {a}", "return a new list with each value in {a} increased by {k}",
            "increase all the elements of {a} by {k}", "give back {a} with {k} added to each item",
            "shift every value in {a} up by {k}",
        ),
    ),
    Family(
        "sum_squares", ("sum_of_squares", "square_sum", "total_of_squares"), "list", _none,
        ("return the sum of the squares of the numbers in {a}", "add up the square of each value in {a}"),
        "return sum(v * v for v in {a})", lambda p: lambda a: sum(v * v for v in a), _lists,
        "return sum(v * 2 for v in {a})", "v * 2 doubles each value; a square is v * v",
        "Each value is squared with v * v and sum adds the squares.",
        natural=(
            "calculate the sum of the squares of {a}", "add up the squares of all the values in {a}",
            "return the total of every element of {a} squared", "compute the sum of squares of the values in {a}",
            "get the sum of the squares of the elements in {a}",
        ),
    ),
    Family(
        "evens", ("only_evens", "even_numbers", "keep_evens"), "list", _none,
        ("return the even numbers in {a}", "keep only the even values of {a}"),
        "return [v for v in {a} if v % 2 == 0]", lambda p: lambda a: [v for v in a if v % 2 == 0], _lists,
        "return [v for v in {a} if v % 2 == 1]", "v % 2 == 1 selects the odd numbers",
        "A value is even when v % 2 is 0; the comprehension keeps those.",
        natural=(
            "return the even numbers from {a}", "filter out the odd numbers in {a}",
            "get all the even values in {a}", "give back only the even elements of {a}",
            "select the values in {a} that are divisible by 2",
        ),
    ),
    Family(
        "average", ("average", "mean", "avg"), "list", _none,
        ("return the average of the numbers in {a}", "compute the mean of the values in {a}"),
        "return sum({a}) / len({a})", lambda p: lambda a: sum(a) / len(a), _nonempty_lists,
        "return sum({a}) / 2", "it divides by 2 instead of by the number of values, len({a})",
        "The mean is the total, sum({a}), divided by how many values there are, len({a}).",
        doc="Return the average of the numbers in the non-empty list {a}.",
        natural=(
            "calculate the average of {a}", "find the mean value of the items in {a}",
            "return the arithmetic mean of {a}", "compute the average value of the elements in {a}",
            "get the mean of all the values in {a}",
        ),
    ),
    Family(
        "largest", ("largest", "biggest", "max_value"), "list", _none,
        ("return the largest number in {a}", "find the biggest value in {a}"),
        "best = {a}[0]\nfor v in {a}:\n    if v > best:\n        best = v\nreturn best",
        lambda p: max, lambda rng, p: [([-3, -7, -1],)] + _nonempty_lists(rng, p),
        "best = 0\nfor v in {a}:\n    if v > best:\n        best = v\nreturn best",
        "best starts at 0, so a list of negative numbers gives 0; start from the first value",
        "best starts as the first value and is replaced by every larger value it meets.",
        doc="Return the largest number in the non-empty list {a}.",
        natural=(
            "return the biggest number in {a}", "find the max value of {a}", "get the largest element in {a}",
            "give back the highest number from {a}", "work out the maximum of {a}",
        ),
    ),
    Family(
        "first_k", ("first_items", "take", "head"), "list", _k(1, 5),
        ("return the first {k} items of {a}", "take the first {k} values from {a}"),
        "return {a}[:{k}]", lambda p: lambda a: a[: p["k"]], _lists,
        "return {a}[{k}:]", "{a}[{k}:] is everything after the first {k}; the first {k} are {a}[:{k}]",
        "The slice {a}[:{k}] takes up to {k} items from the start; shorter lists come back whole.",
        natural=(
            "return the first {k} elements of {a}", "get the first {k} numbers from {a}",
            "keep just the first {k} items of {a}", "take {k} items from the start of {a}",
            "give back the first {k} entries of {a}, or all of them if there are fewer",
        ),
    ),
    Family(
        "unique", ("unique", "dedupe", "remove_duplicates"), "list", _none,
        ("return the values of {a} without duplicates, in their first order", "remove repeated values from {a}, keeping the first of each"),
        "seen = []\nfor v in {a}:\n    if v not in seen:\n        seen.append(v)\nreturn seen",
        lambda p: _unique, lambda rng, p: [([1, 2, 1, 3, 2],), ([],), ([5, 5, 5],)] + _lists(rng, p),
        "seen = []\nfor v in {a}:\n    seen.append(v)\nreturn seen", "it appends every value without checking whether it was seen already",
        "seen collects each value the first time it appears, so the order is kept.",
        natural=(
            "remove duplicates from {a}, keeping the original order",
            "return {a} with each value only once, in the order they first appear",
            "get the distinct values of {a} in their original order",
            "give back the unique elements of {a}, keeping their order",
            "drop repeated numbers from {a}, keeping the first of each",
        ),
    ),
    Family(
        "count_value", ("count_value", "count_of", "occurrences"), "list", _k(0, 9),
        ("return how many times {k} appears in {a}", "count the occurrences of {k} in {a}"),
        "return {a}.count({k})", lambda p: lambda a: a.count(p["k"]), lambda rng, p: [([p["k"], 1, p["k"]],), ([],), ([p["k"] + 1],)] + _lists(rng, p),
        "return len({a})", "len({a}) counts every item, not only those equal to {k}",
        "list.count returns how many items equal {k}.",
        natural=(
            "count how often {k} occurs in {a}", "find the number of times {k} appears in {a}",
            "tell how many elements of {a} are equal to {k}", "return the count of {k} in {a}",
            "get how many times the value {k} shows up in {a}",
        ),
    ),
    Family(
        "product", ("product", "prod", "multiply_together"), "list", _none,
        ("return the product of the numbers in {a}", "multiply all the values in {a} together"),
        "result = 1\nfor v in {a}:\n    result *= v\nreturn result", lambda p: _product,
        lambda rng, p: [([2, 3, 4],), ([],), ([5],)] + [([rng.randint(-5, 9) for _ in range(rng.randint(1, 5))],) for _ in range(3)],
        "result = 0\nfor v in {a}:\n    result *= v\nreturn result", "result starts at 0, and anything times 0 is 0; start at 1",
        "result starts at 1, the empty product, and is multiplied by each value.",
        natural=(
            "multiply together all the values in {a}", "calculate the product of every element of {a}",
            "find the result of multiplying all the items in {a}",
            "give back the product of {a}, or 1 if it is empty", "get everything in {a} multiplied together",
        ),
    ),
    Family(
        "spread", ("spread", "value_range", "max_minus_min"), "list", _none,
        ("return the difference between the largest and smallest number in {a}", "compute the range of the values in {a}, max minus min"),
        "return max({a}) - min({a})", lambda p: lambda a: max(a) - min(a), _nonempty_lists,
        "return max({a}) - {a}[0]", "it subtracts the first value instead of the smallest one",
        "max and min find the two ends; their difference is the spread.",
        doc="Return the largest minus the smallest number of the non-empty list {a}.",
        natural=(
            "return the max of {a} minus the min",
            "find the difference between the biggest and smallest values in {a}",
            "calculate how far apart the largest and smallest values in {a} are",
            "get the range of {a}, the highest value minus the lowest",
            "compute the gap between the maximum and minimum of {a}",
        ),
    ),
    # Text
    Family(
        "reverse", ("reverse", "reversed_text", "backwards"), "text", _none,
        ("return {a} reversed", "reverse the string {a}"),
        "return {a}[::-1]", lambda p: lambda a: a[::-1], _texts,
        "return {a}[1:]", "{a}[1:] drops the first character; a step of -1, {a}[::-1], reverses",
        "The slice {a}[::-1] walks the string backwards.",
        natural=(
            "reverse the characters of {a}", "return {a} backwards", "flip {a} around so it reads backwards",
            "give back the reverse of {a}", "get {a} written backwards", "turn {a} back to front",
        ),
    ),
    Family(
        "palindrome", ("is_palindrome", "palindrome", "reads_same_backwards"), "text", _none,
        ("return True when {a} is a palindrome", "check whether {a} reads the same backwards"),
        "return {a} == {a}[::-1]", lambda p: lambda a: a == a[::-1], _texts,
        "return {a} == {a}[::1]", "{a}[::1] is {a} itself, so every string passes; reverse with [::-1]",
        "{a}[::-1] is {a} reversed; a palindrome equals its reverse.",
        natural=(
            "check if {a} is a palindrome", "tell whether {a} is the same forwards and backwards",
            "see if {a} reads the same in reverse", "return True if {a} is the same when reversed",
            "find out if {a} is a palindrome",
        ),
    ),
    Family(
        "count_letter", ("count_letter", "count_char", "letter_count"), "text", _letter,
        ("return how many times the letter '{c}' appears in {a}", "count the '{c}' characters in {a}"),
        "return {a}.count('{c}')", lambda p: lambda a: a.count(p["c"]), _texts,
        "return {a}.count('{c}') + 1", "the + 1 adds one too many to every count",
        "str.count returns the number of times '{c}' occurs in {a}.",
        natural=(
            "count the occurrences of the letter '{c}' in {a}", "find how many times '{c}' shows up in {a}",
            "return the number of '{c}' characters in {a}", "tell how often the character '{c}' occurs in {a}",
            "get the count of '{c}' in {a}",
        ),
    ),
    Family(
        "vowels", ("count_vowels", "vowel_count", "num_vowels"), "text", _none,
        ("return the number of vowels in {a}", "count the lowercase vowels (a, e, i, o, u) in {a}"),
        "return sum(1 for ch in {a} if ch in 'aeiou')", lambda p: _vowels, _texts,
        "return sum(1 for ch in {a} if ch not in 'aeiou')", "'not in' counts the characters that are not vowels",
        "The generator yields 1 for every character found in 'aeiou'.",
        doc="Return how many of the characters of {a} are lowercase vowels.",
        natural=(
            "count the lowercase vowels in {a}", "find how many lowercase vowels {a} contains",
            "return how many of the characters in {a} are a, e, i, o or u",
            "tell how many vowels (a, e, i, o, u) appear in {a}", "get the number of lowercase vowels in {a}",
        ),
    ),
    Family(
        "repeat", ("repeat", "repeat_text", "echo"), "text", _k(2, 9),
        ("return {a} repeated {k} times", "repeat the string {a} {k} times"),
        "return {a} * {k}", lambda p: lambda a: a * p["k"], _texts,
        "return {a} * {k} + {a}", "it adds one more copy of {a} at the end",
        "Multiplying a string by {k} repeats it {k} times.",
        natural=(
            "return {a} written {k} times in a row", "give back {k} copies of {a} joined together",
            "build a string that is {a} repeated {k} times", "return {k} copies of {a} in one string",
            "concatenate {a} with itself so it appears {k} times",
        ),
    ),
    Family(
        "prefix", ("add_prefix", "prefixed", "with_prefix"), "text", _prefix,
        ("return {a} with '{w}' added in front", "put the prefix '{w}' before {a}"),
        "return '{w}' + {a}", lambda p: lambda a: p["w"] + a, _texts,
        "return {a} + '{w}'", "it adds '{w}' at the end; a prefix goes in front",
        "The + operator joins '{w}' and {a}, with '{w}' first.",
        natural=(
            "add '{w}' to the start of {a}", "put '{w}' in front of {a}", "return {a} with the prefix '{w}'",
            "prepend '{w}' to {a}", "stick '{w}' onto the beginning of {a}",
        ),
    ),
    Family(
        "starts_with", ("starts_with", "begins_with", "has_prefix"), "text", _prefix,
        ("return True when {a} starts with '{w}'", "check whether {a} begins with '{w}'"),
        "return {a}.startswith('{w}')", lambda p: lambda a: a.startswith(p["w"]), _texts,
        "return {a}.endswith('{w}')", "endswith looks at the end of {a}; use startswith",
        "str.startswith checks the beginning of {a} for '{w}'.",
        natural=(
            "check if {a} starts with '{w}'", "tell whether {a} begins with the prefix '{w}'",
            "see if the first letters of {a} are '{w}'", "return True if {a} has '{w}' at the start",
            "test whether {a} opens with '{w}'",
        ),
    ),
    Family(
        "word_count", ("word_count", "count_words", "num_words"), "text", _none,
        ("return the number of words in {a}", "count the words in {a}, split on whitespace"),
        "return len({a}.split())", lambda p: lambda a: len(a.split()), _texts,
        "return len({a})", "len({a}) counts characters; split the text into words first",
        "split() with no argument breaks {a} on runs of whitespace; len counts the words.",
        natural=(
            "count how many words are in {a}", "find the number of words in {a}", "return the word count of {a}",
            "tell how many space-separated words {a} has", "get how many words {a} contains",
        ),
    ),
    Family(
        "upper", ("shout", "to_upper", "uppercase"), "text", _none,
        ("return {a} in capital letters", "convert {a} to upper case"),
        "return {a}.upper()", lambda p: lambda a: a.upper(), _texts,
        "return {a}.lower()", "lower() gives small letters; upper() gives capitals",
        "str.upper returns a copy of {a} with every letter capitalised.",
        natural=(
            "convert {a} to uppercase", "make every letter in {a} a capital", "return {a} in all caps",
            "turn {a} into upper case letters", "change all the letters of {a} to uppercase",
            "capitalize every letter of {a}",
        ),
    ),
    # Two numbers
    Family(
        "larger", ("larger", "max_of_two", "bigger"), "pair", _none,
        ("return the larger of {a} and {b}", "pick whichever of {a} and {b} is bigger"),
        "return {a} if {a} > {b} else {b}", lambda p: lambda a, b: a if a > b else b, _pairs,
        "return {a} if {a} < {b} else {b}", "the comparison is reversed, so it returns the smaller one",
        "The conditional expression returns {a} when it is bigger than {b}, otherwise {b}.",
        natural=(
            "return the bigger of {a} and {b}", "find the maximum of {a} and {b}",
            "give back whichever of {a} and {b} is larger", "get the max of the two numbers {a} and {b}",
            "pick the greater number out of {a} and {b}",
        ),
    ),
    Family(
        "gcd", ("gcd", "greatest_common_divisor", "hcf"), "pair", _none,
        ("return the greatest common divisor of {a} and {b}", "compute the GCD of {a} and {b} with Euclid's algorithm"),
        "while {b}:\n    {a}, {b} = {b}, {a} % {b}\nreturn {a}", lambda p: _gcd, _pairs,
        "while {b}:\n    {a}, {b} = {b}, {a} % {b}\nreturn {b}", "when the loop ends {b} is 0; the divisor is left in {a}",
        "Euclid's algorithm replaces the pair by ({b}, {a} % {b}) until {b} is 0; {a} is then the GCD.",
        natural=(
            "find the greatest common divisor of {a} and {b}", "calculate the GCD of {a} and {b}",
            "return the highest common factor of {a} and {b}",
            "get the largest number that divides both {a} and {b}", "compute the gcd of the integers {a} and {b}",
        ),
    ),
    # Everyday requests (appended after the families the held-out evaluation was built on)
    Family(
        "sum_list", ("sum_list", "add_all", "list_total"), "list", _none,
        ("return the sum of the numbers in {a}", "add up all the values in {a}"),
        "total = 0\nfor v in {a}:\n    total += v\nreturn total", lambda p: lambda a: sum(a), _lists,
        "total = 0\nfor v in {a}:\n    total = v\nreturn total", "total = v replaces the total with each value; it needs total += v",
        "total starts at 0 and every value is added to it with +=.",
        natural=(
            "calculate the total of {a}", "find the sum of all the elements in {a}", "get the total of all the values in {a}",
            "give back everything in {a} added together", "sum up the values of {a}",
        ),
    ),
    Family(
        "smallest", ("smallest", "lowest", "min_value"), "list", _none,
        ("return the smallest number in {a}", "find the lowest value in {a}"),
        "best = {a}[0]\nfor v in {a}:\n    if v < best:\n        best = v\nreturn best",
        lambda p: _smallest, lambda rng, p: [([4, 9, 6],)] + _nonempty_lists(rng, p),
        "best = 0\nfor v in {a}:\n    if v < best:\n        best = v\nreturn best",
        "best starts at 0, so a list of positive numbers gives 0; start from the first value",
        "best starts as the first value and is replaced by every smaller value it meets.",
        doc="Return the smallest number in the non-empty list {a}.",
        natural=(
            "get the minimum value of {a}", "return the min of {a}", "find the least element in {a}",
            "work out the lowest number from {a}", "give back the smallest element of {a}",
        ),
    ),
    Family(
        "last_item", ("last_item", "last", "final_item"), "list", _none,
        ("return the last item of {a}", "get the final element of {a}"),
        "return {a}[-1]", lambda p: lambda a: a[len(a) - 1], _nonempty_lists,
        "return {a}[len({a})]", "{a}[len({a})] is one past the end; the last item is {a}[-1]",
        "Index -1 counts from the end, so {a}[-1] is the last item.",
        doc="Return the last item of the non-empty list {a}.",
        natural=(
            "return the final value in {a}", "find the last number in {a}", "give back the element at the end of {a}",
            "get whatever comes last in {a}", "fetch the last element from {a}",
        ),
    ),
    Family(
        "count_odds", ("count_odds", "odd_count", "num_odds"), "list", _none,
        ("return how many odd numbers are in {a}", "count the odd values in {a}"),
        "return sum(1 for v in {a} if v % 2 == 1)", lambda p: lambda a: len([v for v in a if v % 2 != 0]), _lists,
        "return sum(1 for v in {a} if v % 2 == 0)", "v % 2 == 0 picks the even numbers; odd ones leave a remainder of 1",
        "An odd value leaves a remainder of 1 when divided by 2; the generator yields 1 for each and sum counts them.",
        natural=(
            "find the number of odd elements in {a}", "tell how many values in {a} are odd",
            "get the count of odd values from {a}", "count how many items of {a} are not divisible by 2",
            "work out how many odd numbers {a} contains",
        ),
    ),
    Family(
        "largest_even", ("largest_even", "max_even", "biggest_even"), "list", _none,
        ("return the largest even number in {a}, or None if there is none", "find the biggest even value in {a}, returning None when there is none"),
        "evens = [v for v in {a} if v % 2 == 0]\nreturn max(evens) if evens else None",
        lambda p: _largest_even, lambda rng, p: [([1, 3, 5],), ([-4, -2, -7],)] + _lists(rng, p),
        "evens = [v for v in {a} if v % 2 == 0]\nreturn max(evens)",
        "max() of an empty list raises ValueError, so a list without even numbers crashes; return None then",
        "evens keeps the even values; max picks the biggest, and an empty evens list gives None.",
        natural=(
            "get the highest even number from {a}, or None if there are no evens", "return the max even value in {a}, None if there is none",
            "give back the largest even element of {a}, or None when it has none", "find the biggest value in {a} that is even, or None",
            "work out the greatest even value in {a}, or None if no value is even",
        ),
    ),
    Family(
        "abs_diff", ("abs_diff", "distance", "difference"), "pair", _none,
        ("return the absolute difference between {a} and {b}", "compute how far apart {a} and {b} are"),
        "return abs({a} - {b})", lambda p: lambda a, b: max(a, b) - min(a, b), _pairs,
        "return {a} - {b}", "{a} - {b} is negative when {b} is bigger; abs() makes the difference positive",
        "{a} - {b} is the difference and abs drops its sign, so the order of {a} and {b} does not matter.",
        natural=(
            "find the distance between {a} and {b}", "get the positive difference of {a} and {b}",
            "calculate how much {a} and {b} differ by", "give back the gap between {a} and {b}, never negative",
            "return the difference of {a} and {b} without the sign",
        ),
    ),
    Family(
        "remove_spaces", ("remove_spaces", "no_spaces", "without_spaces"), "text", _none,
        ("return {a} with all the spaces removed", "remove every space from {a}"),
        "return {a}.replace(' ', '')", lambda p: lambda a: "".join(ch for ch in a if ch != " "), _texts,
        "return {a}.strip()", "strip() only removes spaces at the two ends; replace(' ', '') removes every space",
        "replace swaps every space in {a} for the empty string.",
        natural=(
            "delete all the spaces in {a}", "get rid of the spaces in {a}", "strip out every space character from {a}",
            "give back {a} without any spaces", "take all the spaces out of {a}",
        ),
    ),
    Family(
        "title_case", ("title_case", "capitalize_words", "titled"), "text", _none,
        ("return {a} with the first letter of every word capitalized", "capitalize each word in {a}"),
        "return {a}.title()", lambda p: _title, _texts,
        "return {a}.capitalize()", "capitalize() only capitalizes the first letter of the whole string; title() does every word",
        "str.title capitalizes the first letter of every word and makes the other letters lowercase.",
        natural=(
            "make the first letter of each word in {a} uppercase", "convert {a} to title case", "turn {a} into title case",
            "give back {a} with every word starting with a capital letter", "capitalize the start of every word in {a}",
        ),
    ),
    Family(
        "to_fahrenheit", ("to_fahrenheit", "celsius_to_fahrenheit", "c_to_f"), "number", _none,
        ("convert {a} from Celsius to Fahrenheit", "return {a} converted from degrees Celsius to degrees Fahrenheit"),
        "return {a} * 9 / 5 + 32", lambda p: lambda a: 32 + a * 9 / 5, _numbers(-30, 50, 0, 100, -40, 37),
        "return {a} * 5 / 9 + 32", "the fraction is upside down: Celsius to Fahrenheit multiplies by 9 / 5, not 5 / 9",
        "Fahrenheit is Celsius times 9 / 5, plus 32.",
        natural=(
            "change {a} from Celsius to Fahrenheit", "return the Fahrenheit equivalent of {a}, a temperature in Celsius",
            "translate {a} in degrees Celsius to Fahrenheit", "turn {a} from Celsius into Fahrenheit",
            "work out the Fahrenheit value of {a}, given in Celsius",
        ),
    ),
    Family(
        "leap_year", ("is_leap_year", "leap_year", "is_leap"), "number", _none,
        ("return True when {a} is a leap year", "check whether the year {a} is a leap year"),
        "return {a} % 4 == 0 and ({a} % 100 != 0 or {a} % 400 == 0)", lambda p: calendar.isleap,
        lambda rng, p: [(2000,), (1900,), (2024,), (2023,), (2100,)] + [(rng.randint(1800, 2200),) for _ in range(3)],
        "return {a} % 4 == 0", "it forgets the century rule: a year divisible by 100 is a leap year only when 400 divides it too",
        "A leap year is divisible by 4, except that century years must also be divisible by 400.",
        natural=(
            "tell if {a} is a leap year", "see whether {a} is a leap year in the Gregorian calendar", "find out if {a} is a leap year",
            "determine whether {a} is a leap year", "test if {a} is a leap year, following the 100 and 400 year rules",
        ),
    ),
    Family(
        "is_prime", ("is_prime", "prime", "check_prime"), "number", _none,
        ("return True when {a} is a prime number", "check whether {a} is prime"),
        "if {a} < 2:\n    return False\nreturn all({a} % i != 0 for i in range(2, {a}))",
        lambda p: _is_prime, _numbers(0, 100, 0, 1, 2, 9, 13),
        "return all({a} % i != 0 for i in range(2, {a}))", "without the {a} < 2 check, 0 and 1 count as prime",
        "Numbers below 2 are not prime; any other {a} is prime when no i from 2 to {a} - 1 divides it.",
        natural=(
            "tell if {a} is a prime", "see if {a} is prime", "test whether {a} is a prime number", "find out if {a} is prime",
            "determine whether {a} is a prime number",
        ),
    ),
    Family(
        "char_counts", ("char_counts", "char_frequency", "letter_counts"), "text", _none,
        ("return a dict mapping each character of {a} to how many times it appears", "count how often every character occurs in {a}"),
        "counts = dict()\nfor ch in {a}:\n    counts[ch] = counts.get(ch, 0) + 1\nreturn counts", lambda p: _char_counts, _texts,
        "counts = dict()\nfor ch in {a}:\n    counts[ch] = 1\nreturn counts", "counts[ch] = 1 resets the count on every repeat; add 1 to counts.get(ch, 0)",
        "counts.get(ch, 0) is the count so far (0 for a new character), and each character adds 1 to it.",
        natural=(
            "build a dictionary of character counts for {a}", "get how many times each character appears in {a}, as a dict",
            "find the frequency of every character in {a}", "make a dict counting each character of {a}",
            "tally the characters in {a} in a dictionary",
        ),
    ),
)


def family(key: str) -> Family:
    for candidate in FAMILIES:
        if candidate.key == key:
            return candidate
    raise KeyError(key)


def arg_choices(kind: str) -> Sequence[tuple[str, ...]]:
    """Every parameter list a family of this kind may take."""
    if kind == "pair":
        return PAIR_ARGS
    names = {"number": NUMBER_ARGS, "list": LIST_ARGS, "text": TEXT_ARGS}[kind]
    return [(name,) for name in names]
