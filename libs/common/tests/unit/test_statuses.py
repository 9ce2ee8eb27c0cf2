import pytest

from interlock.common.statuses import RunStatus, TaskStatus
from interlock.tasks.v1 import tasks_pb2


@pytest.mark.parametrize(
    ("statuses", "prefix"), [(RunStatus, "RUN_STATUS_"), (TaskStatus, "TASK_STATUS_")]
)
def test_the_wire_enums_carry_the_same_statuses(
    statuses: type[RunStatus | TaskStatus], prefix: str
) -> None:
    enum = tasks_pb2.RunStatus if statuses is RunStatus else tasks_pb2.TaskStatus
    on_the_wire = {name.removeprefix(prefix).lower() for name in enum.keys()} - {"unspecified"}  # noqa: SIM118 - not a dict
    assert on_the_wire == {status.value for status in statuses}


def test_only_succeeded_failed_and_cancelled_runs_are_finished() -> None:
    assert {status for status in RunStatus if status.finished} == {
        RunStatus.SUCCEEDED,
        RunStatus.FAILED,
        RunStatus.CANCELLED,
    }
