"""The task-state gRPC service against a live run."""

from __future__ import annotations

import grpc
import pytest
from pydantic import SecretStr

from interlock.common.identity import IDENTITY_METADATA
from interlock.common.service_credentials import credential_metadata
from interlock.common.testing import TEST_IDENTITY, TestIdentity
from interlock.events.v1 import task_pb2
from interlock.tasks.v1 import tasks_pb2, tasks_pb2_grpc

from .conftest import TENANT, Scheduler, make_settings, running_scheduler, running_worker, task

pytestmark = pytest.mark.integration


async def test_task_state_queries_and_watch(scheduler: Scheduler) -> None:
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"), task("b", "a"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    port = await scheduler.grpc_port()
    md = _identity(TENANT)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = tasks_pb2_grpc.TaskStateServiceStub(channel)
        run = await stub.GetRun(tasks_pb2.GetRunRequest(tenant=TENANT, run_id=run_id), metadata=md)
        assert run.status == tasks_pb2.RUN_STATUS_RUNNING and run.workflow_name == "wf"

        listed = await stub.ListRunTasks(
            tasks_pb2.ListRunTasksRequest(tenant=TENANT, run_id=run_id), metadata=md
        )
        assert [(t.task_id, t.status) for t in listed.tasks] == [
            ("a", tasks_pb2.TASK_STATUS_SCHEDULED),
            ("b", tasks_pb2.TASK_STATUS_PENDING),
        ]
        implied = await stub.GetRun(tasks_pb2.GetRunRequest(run_id=run_id), metadata=md)
        assert implied.run_id == run_id
        with pytest.raises(grpc.aio.AioRpcError) as other_tenant:
            await stub.GetRun(
                tasks_pb2.GetRunRequest(tenant="tenant-b", run_id=run_id), metadata=md
            )
        assert other_tenant.value.code() == grpc.StatusCode.PERMISSION_DENIED
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetTaskState(
                tasks_pb2.GetTaskStateRequest(tenant=TENANT, run_id=run_id, task_id="zz"),
                metadata=md,
            )
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        with pytest.raises(grpc.aio.AioRpcError) as invalid:
            await stub.GetRun(tasks_pb2.GetRunRequest(tenant=TENANT), metadata=md)
        assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

        watch = aiter(
            stub.WatchRun(tasks_pb2.WatchRunRequest(tenant=TENANT, run_id=run_id), metadata=md)
        )
        snapshot = [await anext(watch), await anext(watch)]
        assert {change.task.task_id for change in snapshot} == {"a", "b"}
        worker.behavior = lambda s: ("complete", {"done": s.task_id})
        await worker.publish(
            run_id, task_pb2.TaskCompleted(task_id="a", attempt=1, output_json=b"1")
        )
        changes = [change async for change in watch]
        assert changes[-1].run_status == tasks_pb2.RUN_STATUS_SUCCEEDED
        seen = [(c.task.task_id, c.task.status) for c in changes if c.HasField("task")]
        assert ("a", tasks_pb2.TASK_STATUS_SUCCEEDED) in seen
        assert ("b", tasks_pb2.TASK_STATUS_SUCCEEDED) in seen

        state = await stub.GetTaskState(
            tasks_pb2.GetTaskStateRequest(tenant=TENANT, run_id=run_id, task_id="b"), metadata=md
        )
        assert state.status == tasks_pb2.TASK_STATUS_SUCCEEDED and state.attempt == 1
        assert state.output_json == b'{"done": "b"}' and state.HasField("ended_at")


def _identity(tenant: str) -> tuple[tuple[str, str], ...]:
    """Call metadata with an identity token, as a service calling for a user sends it."""
    return ((IDENTITY_METADATA, TEST_IDENTITY.token(tenant, roles=["viewer"])),)


async def test_calls_without_a_valid_identity_are_refused(scheduler: Scheduler) -> None:
    # The tenant in the request alone once sufficed to read any tenant's runs.
    worker = scheduler.worker
    run_id = await worker.start_run(task("a"))
    await worker.wait_for(lambda: worker.scheduled(run_id))
    port = await scheduler.grpc_port()
    forged = ((IDENTITY_METADATA, TestIdentity().token(TENANT)),)  # a key IAM never had
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = tasks_pb2_grpc.TaskStateServiceStub(channel)
        for metadata, code in (
            ((), grpc.StatusCode.UNAUTHENTICATED),
            (forged, grpc.StatusCode.UNAUTHENTICATED),
            (_identity("tenant-b"), grpc.StatusCode.PERMISSION_DENIED),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.GetRun(
                    tasks_pb2.GetRunRequest(tenant=TENANT, run_id=run_id), metadata=metadata
                )
            assert refused.value.code() == code
        with pytest.raises(grpc.aio.AioRpcError) as unknown_to_other:
            await stub.GetRun(
                tasks_pb2.GetRunRequest(run_id=run_id), metadata=_identity("tenant-b")
            )
        assert unknown_to_other.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_service_credential_reads_the_run_of_the_tenant_it_names(
    request: pytest.FixtureRequest,
) -> None:
    # The metadata service's reconciler acts for no user: it presents a service credential.
    settings = make_settings(request, service_credentials=SecretStr("old-one,metadata-cred"))
    async with running_scheduler(settings) as client, running_worker(settings) as worker:
        run_id = await worker.start_run(task("a"))
        await worker.wait_for(lambda: worker.scheduled(run_id))
        port = int(client.headers["x-test-grpc-port"])
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tasks_pb2_grpc.TaskStateServiceStub(channel)
            good = credential_metadata(SecretStr("metadata-cred"))
            run = await stub.GetRun(
                tasks_pb2.GetRunRequest(tenant=TENANT, run_id=run_id), metadata=good
            )
            assert run.status == tasks_pb2.RUN_STATUS_RUNNING
            for metadata, tenant in (
                (credential_metadata(SecretStr("guessed")), TENANT),
                (good, ""),  # a credential names no tenant of its own
            ):
                with pytest.raises(grpc.aio.AioRpcError) as refused:
                    await stub.GetRun(
                        tasks_pb2.GetRunRequest(tenant=tenant, run_id=run_id), metadata=metadata
                    )
                assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
            with pytest.raises(grpc.aio.AioRpcError) as elsewhere:
                await stub.GetRun(
                    tasks_pb2.GetRunRequest(tenant="tenant-b", run_id=run_id), metadata=good
                )
            assert elsewhere.value.code() == grpc.StatusCode.NOT_FOUND
