from pathlib import Path

import pytest

from interlock.common.errors import MigrationError
from interlock.common.postgres import COMMON_MIGRATIONS, MigrationSource


def test_common_migrations_ship_in_the_package() -> None:
    migrations = COMMON_MIGRATIONS.migrations()
    assert [(m.version, m.name) for m in migrations] == [
        (1, "outbox"),
        (2, "inbox"),
        (3, "outbox_headers_text"),
        (10, "parked_events"),
    ]
    assert "CREATE TABLE interlock_outbox" in migrations[0].sql
    assert all(len(m.checksum) == 64 for m in migrations)


def test_files_are_ordered_by_version_and_other_files_ignored(tmp_path: Path) -> None:
    (tmp_path / "0010_later.sql").write_text("SELECT 10;")
    (tmp_path / "0002_first.sql").write_text("SELECT 2;")
    (tmp_path / "notes.md").write_text("ignored")
    source = MigrationSource(component="x", location=tmp_path)
    assert [(m.version, m.name) for m in source.migrations()] == [(2, "first"), (10, "later")]


def test_checksum_ignores_line_endings(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "0001_x.sql").write_bytes(b"SELECT 1;\nSELECT 2;\n")
    (tmp_path / "b" / "0001_x.sql").write_bytes(b"SELECT 1;\r\nSELECT 2;\r\n")
    a = MigrationSource(component="x", location=tmp_path / "a").migrations()[0]
    b = MigrationSource(component="x", location=tmp_path / "b").migrations()[0]
    assert a.checksum == b.checksum


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "abcd_x.sql"])
def test_misnamed_files_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_description"):
        MigrationSource(component="x", location=tmp_path).migrations()


def test_repeated_version_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;")
    (tmp_path / "0001_b.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="repeats"):
        MigrationSource(component="x", location=tmp_path).migrations()
