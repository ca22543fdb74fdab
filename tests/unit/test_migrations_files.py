from pathlib import Path

import pytest

from beanpay.migrate import MigrationError, discover


def test_shipped_migrations_are_numbered_without_gaps() -> None:
    found = discover()
    assert [m.version for m in found] == list(range(1, len(found) + 1))


def test_gap_and_bad_names_are_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0003_c.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="without gaps"):
        discover(tmp_path)
    (tmp_path / "0003_c.sql").unlink()
    (tmp_path / "2_b.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="bad migration file name"):
        discover(tmp_path)
