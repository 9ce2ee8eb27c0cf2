"""The validation matrix: every kind of problem, reported once with its JSON Pointer."""

import copy
import json
from typing import Any

import pytest
from google.protobuf import json_format

from interlock.events.v1 import definition_pb2
from interlock.workflow.domain import (
    DEFINITION_SCHEMA,
    TASK_TYPES,
    InvalidDefinitionError,
    InvalidDocumentError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
    compile_definition,
    parse_document,
)
from interlock.workflow.domain.limits import MAX_DEFINITION_BYTES, MAX_TASKS

EXAMPLE_YAML = b"""
name: nightly-etl
description: Pull, wait for the weekly window, transform, publish.
labels: {team: data}
input_schema: {type: object, required: [source], properties: {source: {type: string}}}
defaults:
  retry: {max_attempts: 3, initial_interval: 1s, backoff: 2.0, max_interval: 60s, jitter: full}
  timeout: 5m
tasks:
  - id: extract
    type: http
    params: {method: GET, url: "{{ input.source }}"}
  - id: window
    type: delay
    params: {weekdays: [mon, wed], at: "09:00", timezone: Europe/Berlin}
    depends_on: [extract]
  - id: transform
    type: python
    params: {function: "etl.steps:transform", data: "{{ tasks.extract.output.body }}"}
    depends_on: [window]
    timeout: 10m
    heartbeat_timeout: 30s
    retry: {max_attempts: 5}
    compensate: {type: http, params: {method: DELETE, url: "{{ tasks.transform.output.id }}"}}
    queue: heavy
    priority: 7
  - id: publish
    type: noop
    depends_on: [transform]
  - id: later
    type: delay
    params: {date: 2027-03-01, at: "06:00", timezone: UTC}
  - id: pause
    type: delay
    params: {duration: 2d}
"""


def example() -> dict[str, Any]:
    document = parse_document(EXAMPLE_YAML, "application/yaml")
    assert isinstance(document, dict)
    return document


def problems(document: Any) -> list[tuple[str, str]]:
    with pytest.raises(InvalidDefinitionError) as caught:
        compile_definition(document)
    return [(issue.pointer, issue.detail) for issue in caught.value.issues]


def pointers(document: Any) -> list[str]:
    return [pointer for pointer, _ in problems(document)]


def test_the_example_normalizes_defaults_durations_weekdays_delays_retry_compensation() -> None:
    compiled = compile_definition(example())
    tasks = {task.id: task for task in compiled.definition.tasks}
    assert compiled.name == "nightly-etl"
    assert compiled.labels == {"team": "data"}
    assert list(tasks) == ["extract", "window", "transform", "publish", "later", "pause"]
    extract, transform = tasks["extract"], tasks["transform"]
    assert json.loads(extract.params_json) == {"method": "GET", "url": "{{ input.source }}"}
    assert extract.timeout_ms == 300_000  # from defaults
    assert extract.retry == definition_pb2.RetryPolicy(
        max_attempts=3,
        initial_interval_ms=1000,
        backoff_coefficient=2.0,
        max_interval_ms=60_000,
        jitter=definition_pb2.RetryPolicy.JITTER_FULL,
    )
    assert transform.timeout_ms == 600_000
    assert transform.heartbeat_timeout_ms == 30_000
    assert transform.retry.max_attempts == 5  # own value, other fields from defaults
    assert transform.retry.max_interval_ms == 60_000
    assert transform.compensate.type == "http"
    assert json.loads(transform.compensate.params_json)["method"] == "DELETE"
    assert (transform.queue, transform.priority) == ("heavy", 7)
    assert list(transform.depends_on) == ["window"]
    assert tasks["window"].delay.weekly == definition_pb2.WeeklyDelay(
        weekdays=[1, 3], at="09:00", timezone="Europe/Berlin"
    )
    assert tasks["later"].delay.date == definition_pb2.DateDelay(
        date="2027-03-01", at="06:00", timezone="UTC"
    )
    assert tasks["pause"].delay.duration_ms == 2 * 86_400_000
    assert not extract.HasField("delay")


def test_without_defaults_a_task_gets_one_attempt_no_timeout_and_the_default_queue() -> None:
    compiled = compile_definition({"name": "w", "tasks": [{"id": "a", "type": "noop"}]})
    (task,) = compiled.definition.tasks
    assert task.retry.max_attempts == 1
    assert task.retry.jitter == definition_pb2.RetryPolicy.JITTER_FULL
    assert (task.timeout_ms, task.heartbeat_timeout_ms, task.queue, task.priority) == (
        0,
        0,
        "",
        0,
    )
    assert json.loads(task.params_json) == {}


def test_json_and_yaml_of_one_definition_hash_alike_and_key_order_does_not_matter() -> None:
    from_yaml = compile_definition(example())
    as_json = json.dumps(example()).encode()
    from_json = compile_definition(parse_document(as_json, "application/json; charset=utf-8"))
    reordered = dict(reversed(list(example().items())))
    assert from_yaml.content_hash == from_json.content_hash
    assert compile_definition(reordered).content_hash == from_yaml.content_hash
    changed = example()
    changed["description"] = "other"
    assert compile_definition(changed).content_hash != from_yaml.content_hash


def test_yaml_keeps_dates_and_clock_times_as_strings() -> None:
    document = parse_document(
        b"name: w\ntasks:\n- {id: d, type: delay, params: {date: 2027-03-01, at: 9:30}}\n",
        "text/yaml",
    )
    assert document["tasks"][0]["params"] == {"date": "2027-03-01", "at": "9:30"}
    assert parse_document(b"a: 12\nb: 1.5\nc: -3\n", "application/yaml") == {
        "a": 12,
        "b": 1.5,
        "c": -3,
    }


def test_a_cycle_is_named_as_a_path() -> None:
    document = {
        "name": "w",
        "tasks": [
            {"id": "a", "type": "noop", "depends_on": ["c"]},
            {"id": "b", "type": "noop", "depends_on": ["a"]},
            {"id": "c", "type": "noop", "depends_on": ["b"]},
            {"id": "d", "type": "noop", "depends_on": ["d"]},
        ],
    }
    found = problems(document)
    assert len(found) == 2
    (cycle_at, cycle), (self_at, self_cycle) = found
    assert cycle_at.startswith("/tasks/") and cycle_at.endswith("/depends_on")
    assert "dependency cycle" in cycle
    for name in "abc":
        assert name in cycle
    assert (self_at, self_cycle) == ("/tasks/3/depends_on", "dependency cycle: d → d")


@pytest.mark.parametrize(
    ("change", "pointer", "detail"),
    [
        (lambda d: d["tasks"][5].update(id="extract"), "/tasks/5/id", "duplicate task id"),
        (
            lambda d: d["tasks"][3].update(depends_on=["transform", "nope"]),
            "/tasks/3/depends_on/1",
            "unknown task 'nope'",
        ),
        (
            lambda d: d["tasks"][1].update(depends_on=["extract", "extract"]),
            "/tasks/1/depends_on/1",
            "listed twice",
        ),
        (lambda d: d["tasks"][0].update(type="ftp"), "/tasks/0/type", "'ftp' is not one of"),
        (lambda d: d["tasks"][5].update(id="has space"), "/tasks/5/id", "does not match"),
        (lambda d: d["tasks"][0].update(timeout="5 minutes"), "/tasks/0/timeout", "does not match"),
        (lambda d: d["tasks"][0].update(timeout="400d"), "/tasks/0/timeout", "longer than 366"),
        (
            lambda d: d["defaults"].update(timeout="soon"),
            "/defaults/timeout",
            "does not match",
        ),
        (
            lambda d: d["tasks"][2].update(retry={"max_attempts": 0}),
            "/tasks/2/retry/max_attempts",
            "less than the minimum",
        ),
        (
            lambda d: d["tasks"][2].update(retry={"initial_interval": "2m", "max_interval": "1m"}),
            "/tasks/2/retry/max_interval",
            "shorter than initial_interval",
        ),
        (
            lambda d: d["tasks"][1]["params"].update(timezone="Mars/Olympus"),
            "/tasks/1/params/timezone",
            "unknown timezone 'Mars/Olympus'",
        ),
        (
            lambda d: d["tasks"][1]["params"].update(weekdays=["mon", "funday"]),
            "/tasks/1/params/weekdays/1",
            "'funday' is not a weekday",
        ),
        (
            lambda d: d["tasks"][1]["params"].update(at="25:00"),
            "/tasks/1/params/at",
            "not a 24-hour time",
        ),
        (
            lambda d: d["tasks"][1]["params"].pop("at"),
            "/tasks/1/params",
            'needs "at"',
        ),
        (
            lambda d: d["tasks"][4]["params"].update(date="2027-02-30"),
            "/tasks/4/params/date",
            "not a calendar date",
        ),
        (
            lambda d: d["tasks"][4]["params"].update(date="March 1st"),
            "/tasks/4/params/date",
            "not a date YYYY-MM-DD",
        ),
        (
            lambda d: d["tasks"][5]["params"].update(duration="2 days"),
            "/tasks/5/params/duration",
            "not a duration",
        ),
        (
            lambda d: d["tasks"][5]["params"].update(date="2027-01-01"),
            "/tasks/5/params",
            "exactly one of duration, weekdays or date",
        ),
        (
            lambda d: d["tasks"][5].update(params={}),
            "/tasks/5/params",
            "exactly one of duration, weekdays or date (found none)",
        ),
        (
            lambda d: d["tasks"][0]["params"].update(url="{{ tasks.publish.output.url }}"),
            "/tasks/0/params/url",
            "reads task 'publish', which is not upstream",
        ),
        (
            lambda d: d["tasks"][3].update(params={"x": ["{{ tasks.later.output }}"]}),
            "/tasks/3/params/x/0",
            "reads task 'later', which is not upstream",
        ),
        (
            lambda d: d["tasks"][0]["params"].update(url="{{ secrets.token }}"),
            "/tasks/0/params/url",
            "unknown root 'secrets'",
        ),
        (
            lambda d: d["tasks"][2]["compensate"].update(type="delay"),
            "/tasks/2/compensate/type",
            "is not one of",
        ),
        (
            lambda d: d.update(input_schema={"type": "nonsense"}),
            "/input_schema/type",
            "not a valid JSON Schema",
        ),
        (lambda d: d.update(name="has space"), "/name", "does not match"),
        (lambda d: d.update(name="schema"), "/name", "'schema' is reserved"),
        (lambda d: d.update(extra=1), "", "Additional properties are not allowed"),
        (lambda d: d.update(tasks=[]), "/tasks", "should be non-empty"),
        (lambda d: d["labels"].update(team=3), "/labels/team", "is not of type 'string'"),
    ],
)
def test_each_problem_is_reported_once_at_its_pointer(
    change: Any, pointer: str, detail: str
) -> None:
    document = copy.deepcopy(example())
    change(document)
    found = problems(document)
    assert len(found) == 1, found
    assert found[0][0] == pointer
    assert detail in found[0][1]


@pytest.mark.parametrize("priority", [2**31, -(2**40), 225519782878968])
def test_a_priority_beyond_any_integer_field_is_a_problem_not_a_crash(priority: int) -> None:
    # The task spec's int32 field raised ValueError (a 500) while the problems were listed.
    document = example()
    document["tasks"][0]["priority"] = priority
    assert pointers(document) == ["/tasks/0/priority"]


def test_transitive_upstream_references_are_allowed() -> None:
    document = example()
    document["tasks"][3]["params"] = {"body": "{{ tasks.extract.output.body }}"}
    compile_definition(document)  # publish ← transform ← window ← extract


def test_several_problems_are_all_reported_sorted_by_pointer() -> None:
    document = example()
    document["tasks"][0]["type"] = "ftp"
    document["tasks"][1]["params"]["timezone"] = "Nowhere/Else"
    document["tasks"][3]["depends_on"] = ["ghost"]
    assert pointers(document) == [
        "/tasks/0/type",
        "/tasks/1/params/timezone",
        "/tasks/3/depends_on/0",
    ]


def test_too_many_tasks_is_one_problem() -> None:
    document = {
        "name": "big",
        "tasks": [{"id": f"t{i}", "type": "noop"} for i in range(MAX_TASKS + 1)],
    }
    found = problems(document)
    assert found == [("/tasks", found[0][1])]
    assert "too long" in found[0][1]


def test_a_document_that_is_not_an_object() -> None:
    assert pointers(["not", "an", "object"]) == [""]


def test_documents_too_large_unparsable_or_of_another_media_type_are_refused() -> None:
    with pytest.raises(PayloadTooLargeError, match="bytes"):
        parse_document(b" " * (MAX_DEFINITION_BYTES + 1), "application/json")
    with pytest.raises(InvalidDocumentError, match="not JSON"):
        parse_document(b"{", "application/json")
    with pytest.raises(InvalidDocumentError, match="not YAML"):
        parse_document(b"a: [", "application/yaml")
    with pytest.raises(InvalidDocumentError, match="not a string"):
        parse_document(b"1: x", "application/yaml")
    with pytest.raises(UnsupportedMediaTypeError):
        parse_document(b"name: w", "text/plain")


def test_the_schema_lists_the_known_task_types_from_the_one_list() -> None:
    assert DEFINITION_SCHEMA["$defs"]["task"]["properties"]["type"]["enum"] == list(TASK_TYPES)
    assert "delay" in TASK_TYPES


def test_the_normalized_definition_survives_protobuf_round_trips() -> None:
    compiled = compile_definition(example())
    data = compiled.definition.SerializeToString()
    parsed = definition_pb2.WorkflowDefinition.FromString(data)
    assert parsed == compiled.definition
    assert json_format.MessageToDict(parsed)["name"] == "nightly-etl"


def test_yaml_aliases_are_refused_so_a_small_document_cannot_expand_exponentially() -> None:
    bomb = b'a: &a ["x", "x"]\nb: &b [*a, *a]\nc: [*b, *b]\n'
    with pytest.raises(InvalidDocumentError, match="aliases"):
        parse_document(bomb, "application/yaml")


@pytest.mark.parametrize("media_type", ["application/json", "application/yaml"])
def test_deep_nesting_is_refused_not_a_crash(media_type: str) -> None:
    deep = b"[" * 5_000 + b"]" * 5_000
    with pytest.raises(InvalidDocumentError):
        parse_document(deep, media_type)
    nested = json.dumps({"name": "w", "x": json.loads("[" * 70 + "]" * 70)}).encode()
    with pytest.raises(InvalidDocumentError, match="nests deeper than 64"):
        parse_document(nested, media_type)
