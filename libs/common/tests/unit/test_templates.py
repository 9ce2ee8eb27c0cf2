import pytest

from interlock.common import templates
from interlock.common.templates import (
    TemplateError,
    fill_secrets,
    references,
    render,
    secret_names,
)

CONTEXT = {
    "input": {"source": "http://example.test/data", "limit": 5},
    "tasks": {"extract": {"output": {"body": {"rows": [1, 2]}, "status": 200}}},
}


def test_references_are_found_with_their_pointers() -> None:
    params = {
        "url": "{{ input.source }}",
        "headers": {"x/y": "id {{tasks.extract.output.status}}"},
        "items": ["{{ tasks.extract.output.body }}"],
    }
    found = references(params)
    assert [(r.pointer, r.path) for r in found] == [
        ("/url", ("input", "source")),
        ("/headers/x~1y", ("tasks", "extract", "output", "status")),
        ("/items/0", ("tasks", "extract", "output", "body")),
    ]
    assert [r.task_id for r in found] == [None, "extract", "extract"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{ }}", "not a dotted path"),
        ("{{ input.source | upper }}", "not a dotted path"),
        ("{{ env.HOME }}", "unknown root 'env'"),
        ("{{ tasks.extract }}", "tasks.<id>.output"),
    ],
)
def test_malformed_templates_are_rejected(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("|", r"\|")) as caught:
        references({"a": [text]})
    assert caught.value.pointer == "/a/0"


def test_a_whole_string_template_keeps_the_value_type() -> None:
    rendered = render(
        {"data": "{{ tasks.extract.output.body }}", "n": "{{ input.limit }}"}, CONTEXT
    )
    assert rendered == {"data": {"rows": [1, 2]}, "n": 5}


def test_embedded_templates_become_text() -> None:
    rendered = render(
        "GET {{ input.source }}?limit={{input.limit}} rows={{ tasks.extract.output.body.rows }}",
        CONTEXT,
    )
    assert rendered == "GET http://example.test/data?limit=5 rows=[1, 2]"


def test_list_indexes_and_untemplated_values_pass_through() -> None:
    assert render(["{{ tasks.extract.output.body.rows.1 }}", 3, None, True], CONTEXT) == [
        2,
        3,
        None,
        True,
    ]


def test_a_missing_value_is_an_error_with_its_pointer() -> None:
    with pytest.raises(TemplateError, match="has no value") as caught:
        render({"u": ["{{ tasks.transform.output }}"]}, CONTEXT)
    assert caught.value.pointer == "/u/0"


def test_secret_references_are_validated_left_for_the_worker_and_filled_there() -> None:
    params = {"auth": "Bearer {{ secrets.API_TOKEN }}", "token": "{{secrets.API_TOKEN}}"}
    assert [ref.path for ref in references(params)] == [
        ("secrets", "API_TOKEN"),
        ("secrets", "API_TOKEN"),
    ]
    with pytest.raises(TemplateError, match=r"secrets\.<NAME>"):
        references({"x": "{{ secrets.A.B }}"})
    rendered = render({**params, "user": "{{ input.user }}"}, {"input": {"user": "ann"}})
    assert rendered == {**params, "user": "ann"}  # the scheduler never sees a value
    assert secret_names(rendered) == {"API_TOKEN"}
    filled = fill_secrets(rendered, {"API_TOKEN": "s3cr3t"})
    assert filled == {"auth": "Bearer s3cr3t", "token": "s3cr3t", "user": "ann"}
    with pytest.raises(TemplateError, match="no secret"):
        fill_secrets(rendered, {})


@pytest.mark.parametrize(
    "value",
    ["{{ secrets.API_TOKEN }}", "see {{secrets.API_TOKEN}}", {"nested": ["{{ secrets.X }}"]}],
)
def test_data_cannot_ask_for_a_secret(value: object) -> None:
    # Run input or an upstream output carrying a reference would make the worker send
    # the secret wherever the task sends that value.
    for params in ({"body": "{{ input.value }}"}, {"body": "got: {{ input.value }}"}):
        with pytest.raises(TemplateError, match="secret reference"):
            render(params, {"input": {"value": value}})


# The old pattern backtracked: "{{" and 3,000 spaces took 7.7 s, 20,000 most of an hour.
# The timeouts below are hang guards only; the scans finish in milliseconds.
@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "text",
    [
        "{{" + " " * 20_000,
        "{{" + " " * 20_000 + "x",
        "{{ " * 20_000,
        "{{" + " " * 20_000 + "}" + " " * 20_000,
    ],
    ids=["open-then-spaces", "spaces-then-text", "many-opens", "lone-brace"],
)
def test_unclosed_templates_are_scanned_in_one_pass(text: str) -> None:
    assert templates.references({"body": text}) == []
    assert templates.render({"body": text}, {"input": {}}) == {"body": text}


@pytest.mark.timeout(60)
def test_a_long_spaced_template_is_read_in_one_pass() -> None:
    text = "{{" + " " * 20_000 + "input.x" + " " * 20_000 + "}}"
    assert [r.path for r in templates.references([text])] == [("input", "x")]
    assert templates.render([text, f"a{text}b"], {"input": {"x": 1}}) == [1, "a1b"]


def test_scan_reports_each_template_once_in_order() -> None:
    text = "a {{ x }} b {{y}}{{ z.w }} {{ unclosed"
    assert [(text[s:e], expr) for s, e, expr in templates.scan(text)] == [
        ("{{ x }}", "x"),
        ("{{y}}", "y"),
        ("{{ z.w }}", "z.w"),
    ]


def test_long_expressions_are_refused_without_echoing_them() -> None:
    with pytest.raises(templates.TemplateError) as raised:
        templates.references({"p": "{{ input." + "a" * 10_000 + " }}"})
    assert len(str(raised.value)) < 200
