from datetime import UTC, datetime, timedelta

from interlock.notification.domain import EventName, FailedTask, RunFacts, render, run_message

START = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def test_a_failed_run_email_has_the_summary_the_error_and_the_link_in_both_bodies() -> None:
    facts = RunFacts(
        run_id="r-1",
        workflow="etl<script>",
        version=3,
        status="failed",
        started_at=START,
        finished_at=START + timedelta(seconds=90),
        failed_tasks=(FailedTask(task_id="load", error_type="TimeoutError", message="a < b"),),
    )
    message = run_message(EventName.RUN_FAILED, START, facts, public_url="http://gw:8080/")
    assert message["data"]["duration_ms"] == 90_000
    assert message["data"]["links"]["run"] == "http://gw:8080/api/v1/runs/r-1"
    email = render(message, subscription="ops")
    assert email.subject == "[Interlock] Run of etl<script> failed"
    assert "Failed task load: TimeoutError: a < b" in email.text
    assert "http://gw:8080/api/v1/runs/r-1" in email.text
    assert "90.000 s" in email.text
    assert "etl&lt;script&gt;" in email.html and "<script>" not in email.html
    assert "TimeoutError" in email.html and "a &lt; b" in email.html
    assert 'href="http://gw:8080/api/v1/runs/r-1"' in email.html
