"""Generate Python code (and typing stubs) for every .proto file under proto/.

Usage: ``python scripts/gen_proto.py [OUTPUT_DIR]``. The default output is
``libs/protos/src``, the package other code imports; the staleness test
generates into a temporary folder and compares.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parent.parent
PROTO_ROOT = ROOT / "proto"
DEFAULT_OUTPUT = ROOT / "libs" / "protos" / "src"


def proto_files() -> list[Path]:
    """Every .proto file of the tree, in a stable order."""
    return sorted(PROTO_ROOT.rglob("*.proto"))


def generate(output: Path) -> None:
    """Run protoc with the python, grpc and mypy plugins into ``output``."""
    output.mkdir(parents=True, exist_ok=True)
    well_known = resources.files("grpc_tools") / "_proto"
    # google/rpc/*.proto (Envoy's ext_authz answers with a google.rpc.Status), shipped
    # by googleapis-common-protos; its generated code is imported from there too.
    # google.rpc is a namespace package: find the folder through a module it holds.
    status_module = importlib.util.find_spec("google.rpc.status_pb2")
    assert status_module is not None and status_module.origin is not None
    googleapis = Path(status_module.origin).parent.parent.parent
    bin_dir = Path(sys.executable).parent
    os.environ["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"-I{well_known}",
        f"-I{googleapis}",
        f"--python_out={output}",
        f"--grpc_python_out={output}",
        f"--mypy_out={output}",
        f"--mypy_grpc_out={output}",
        *(str(path.relative_to(PROTO_ROOT)) for path in proto_files()),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    generate(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT)
