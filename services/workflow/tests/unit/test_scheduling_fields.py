"""Definition fields of issue 17: run timeout, concurrency, output, conditions, rules."""

from typing import Any

import pytest

from interlock.events.v1 import definition_pb2
from interlock.workflow.domain import InvalidDefinitionError, compile_definition


def _document(**extra: Any) -> dict[str, Any]:
    return {
        "name": "branches",
        "tasks": [
            {"id": "check", "type": "noop"},
            {
                "id": "big",
                "type": "noop",
                "depends_on": ["check"],
                "when": "tasks.check.output.size > 10 and input.mode != 'dry'",
                "schedule_to_start_timeout": "30s",
            },
            {
                "id": "join",
                "type": "noop",
                "depends_on": ["big"],
                "trigger_rule": "none_failed",
            },
        ],
        **extra,
    }


def test_new_fields_are_normalized_into_the_definition() -> None:
    compiled = compile_definition(
        _document(timeout="1h", max_concurrent_runs=2, output={"rows": "{{ tasks.big.output }}"})
    ).definition
    assert compiled.timeout_ms == 3_600_000
    assert compiled.max_concurrent_runs == 2
    assert compiled.output_json == b'{"rows":"{{ tasks.big.output }}"}'
    check, big, join = compiled.tasks
    assert big.when.startswith("tasks.check.output.size > 10")
    assert big.schedule_to_start_timeout_ms == 30_000
    assert check.trigger_rule == definition_pb2.TRIGGER_RULE_ALL_SUCCESS
    assert join.trigger_rule == definition_pb2.TRIGGER_RULE_NONE_FAILED


def test_defaults_carry_the_schedule_to_start_timeout() -> None:
    compiled = compile_definition(_document(defaults={"schedule_to_start_timeout": "5s"}))
    assert [t.schedule_to_start_timeout_ms for t in compiled.definition.tasks] == [
        5_000,
        30_000,
        5_000,
    ]


@pytest.mark.parametrize(
    ("change", "at"),
    [
        ({"when": "__import__('os').system('x')"}, "/tasks/1/when"),
        ({"when": "tasks.join.status == 'succeeded'"}, "/tasks/1/when"),
        ({"when": "input.x +"}, "/tasks/1/when"),
        ({"trigger_rule": "all_failed"}, "/tasks/1/trigger_rule"),
        ({"schedule_to_start_timeout": "soon"}, "/tasks/1/schedule_to_start_timeout"),
    ],
)
def test_bad_task_fields_are_refused_where_they_are(change: dict[str, Any], at: str) -> None:
    document = _document()
    document["tasks"][1].update(change)
    with pytest.raises(InvalidDefinitionError) as raised:
        compile_definition(document)
    assert at in [issue.pointer for issue in raised.value.issues]


@pytest.mark.parametrize(
    ("extra", "at"),
    [
        ({"max_concurrent_runs": 0}, "/max_concurrent_runs"),
        ({"timeout": "forever"}, "/timeout"),
        ({"output": {"x": "{{ tasks.nope.output }}"}}, "/output/x"),
        ({"output": {"x": "{{ secrets.TOKEN }}"}}, "/output/x"),
        ({"output": "rows"}, "/output"),
    ],
)
def test_bad_run_fields_are_refused_where_they_are(extra: dict[str, Any], at: str) -> None:
    with pytest.raises(InvalidDefinitionError) as raised:
        compile_definition(_document(**extra))
    assert at in [issue.pointer for issue in raised.value.issues]
