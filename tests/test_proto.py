"""The generated code in libs/protos matches proto/: `make proto` was run after every change."""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "libs" / "protos" / "src"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_proto", ROOT / "scripts" / "gen_proto.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_proto"] = module
    spec.loader.exec_module(module)
    return module


def _tree(root: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(root)): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    _load_generator().generate(tmp_path)
    fresh, committed = _tree(tmp_path), _tree(GENERATED)
    stale = sorted(
        name for name in fresh.keys() | committed.keys() if fresh.get(name) != committed.get(name)
    )
    assert not stale, f"run `make proto`: these generated files differ from proto/: {stale}"


def test_every_event_payload_is_importable() -> None:
    from interlock.events.v1 import task_pb2, workflow_pb2

    assert task_pb2.TaskScheduled.DESCRIPTOR.full_name == "interlock.events.v1.TaskScheduled"
    assert (
        workflow_pb2.WorkflowStarted.DESCRIPTOR.full_name == "interlock.events.v1.WorkflowStarted"
    )
