"""The scheduler's OpenAPI document says what each route answers, errors included."""

from __future__ import annotations

from interlock.scheduler import SchedulerSettings, create_app

PROBLEM = "application/problem+json"


def test_every_route_declares_its_answer_and_its_problems() -> None:
    document = create_app(SchedulerSettings()).openapi()
    operations = {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        if path.startswith("/api/v1/")
        for method, operation in item.items()
    }
    assert len(operations) == 6  # five of its own and the parked-events list
    for (method, path), operation in operations.items():
        responses = operation["responses"]
        success = [code for code in responses if code.startswith("2")]
        assert len(success) == 1, (method, path)
        if success[0] != "204":
            assert "$ref" in str(responses[success[0]]["content"]), (method, path)
        problems = {
            code for code, answer in responses.items() if PROBLEM in answer.get("content", {})
        }
        assert {"401", "403", "429"} <= problems, (method, path)
        assert "422" not in responses or "422" in problems, (method, path)
    dead_letters = operations[("GET", "/api/v1/dead-letters")]
    names = {parameter["name"] for parameter in dead_letters["parameters"]}
    assert {"page_size", "page_token"} <= names and not {"limit", "cursor"} & names
    assert "next_page_token" in str(document["components"]["schemas"]["DeadLetterPage"])
    assert (
        "404" in operations[("POST", "/api/v1/dead-letters/{dead_letter_id}/replay")]["responses"]
    )
