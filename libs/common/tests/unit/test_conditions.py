from typing import Any

import pytest

from interlock.common.conditions import ConditionError, evaluate, parse

CONTEXT: dict[str, Any] = {
    "input": {"region": "eu", "count": 3, "tags": ["a", "b"], "flag": True, "nested": {"x": 1}},
    "tasks": {
        "check": {"status": "succeeded", "output": {"ok": True, "rows": [{"n": 5}]}},
        "other": {"status": "skipped", "output": None},
    },
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("input.region == 'eu'", True),
        ('input.region != "eu"', False),
        ("input.count > 2 and input.count <= 3", True),
        ("input.count < 2 or input.flag", True),
        ("not input.flag", False),
        ("not (input.count >= 3)", False),
        ("'a' in input.tags", True),
        ("'z' not in input.tags", True),
        ("'x' in input.nested", True),
        ("'x' in input.region", False),
        ("tasks.check.output.ok == true", True),
        ("tasks.check.output.rows[0].n == 5", True),
        ("tasks.check.output.rows[7].n == null", True),
        ("tasks.other.status == 'skipped'", True),
        ("input.missing.deeper == null", True),
        ("input.flag == 1", False),
        ("input.count == 3.0", True),
        ("-1.5e2 < input.count", True),
        ("input.tags", True),
        ("input.missing", False),
        ("true and not false or null", True),
    ],
)
def test_conditions_evaluate_over_input_and_upstream_outputs(text: str, expected: bool) -> None:
    assert evaluate(parse(text), CONTEXT) is expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "input.count >",
        "__import__('os')",
        "input.count + 1",
        "os.system('x')",
        "tasks.check",
        "tasks.check.params",
        "(input.count",
        "input.count == 1)",
        "input[x]",
        "lambda: 1",
        "input.region == 'eu' ;",
        "x" * 1025,
        "not " * 40 + "true",
        "(" * 40 + "true" + ")" * 40,
    ],
)
def test_malformed_or_unsafe_conditions_are_refused(text: str) -> None:
    with pytest.raises(ConditionError):
        parse(text)


@pytest.mark.parametrize("text", ["input.region < 3", "input.count in 5", "null > 1"])
def test_comparing_values_of_the_wrong_kinds_is_an_error(text: str) -> None:
    with pytest.raises(ConditionError):
        evaluate(parse(text), CONTEXT)


def test_a_condition_lists_the_tasks_it_reads() -> None:
    condition = parse("tasks.a.output.x == 1 or tasks.b.status == 'failed' and input.y")
    assert [p.task_id for p in condition.paths()] == ["a", "b", None]
