"""Migration files: NNNN_name.sql, ordered, versions unique, checksummed."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chatd.db.migrate import Migration, discover
from chatd.db.queries import sql_root
from chatd.errors import MigrationError


def test_repo_migrations_are_ordered_with_unique_versions() -> None:
    migrations = discover()
    assert migrations
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions))
    assert versions[0] == 1
    on_disk = sorted(p.name for p in (sql_root() / "migrations").glob("*.sql"))
    assert [m.filename for m in migrations] == on_disk
    assert all(m.sql.strip() for m in migrations)


def test_discover_orders_by_version_and_reads_the_text(tmp_path: Path) -> None:
    (tmp_path / "0010_later.sql").write_text("SELECT 10;\n", encoding="utf-8")
    (tmp_path / "0002_second.sql").write_text("SELECT 2;\n", encoding="utf-8")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;\n", encoding="utf-8")
    (tmp_path / "README.md").write_text("not a migration\n", encoding="utf-8")
    assert discover(tmp_path) == [
        Migration(1, "first", "SELECT 1;\n"),
        Migration(2, "second", "SELECT 2;\n"),
        Migration(10, "later", "SELECT 10;\n"),
    ]


def test_empty_directory_has_no_migrations(tmp_path: Path) -> None:
    assert discover(tmp_path) == []


@pytest.mark.parametrize(
    "name",
    [
        "1_first.sql",
        "00001_first.sql",
        "0001-first.sql",
        "0001_First.sql",
        "0001_.sql",
        "first.sql",
    ],
)
def test_badly_named_files_are_refused(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_text("SELECT 1;\n", encoding="utf-8")
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover(tmp_path)


def test_a_version_used_twice_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1;\n", encoding="utf-8")
    (tmp_path / "0001_b.sql").write_text("SELECT 2;\n", encoding="utf-8")
    with pytest.raises(MigrationError, match="version 1 used twice"):
        discover(tmp_path)


def test_checksum_is_sha256_of_the_text() -> None:
    m = Migration(3, "add_index", "CREATE INDEX i ON t (c);\n")
    assert m.checksum == hashlib.sha256(b"CREATE INDEX i ON t (c);\n").hexdigest()
    assert m.filename == "0003_add_index.sql"
    assert Migration(3, "add_index", "CREATE INDEX i ON t (c); \n").checksum != m.checksum


def test_repo_checksums_match_the_files() -> None:
    for m in discover():
        text = (sql_root() / "migrations" / m.filename).read_text(encoding="utf-8")
        assert m.checksum == hashlib.sha256(text.encode()).hexdigest()
