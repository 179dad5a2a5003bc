"""The README's main command, `rmt verify --quick`, end to end; and the record helpers."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rmt.commands.verify import _format_table
from theory.selfcheck import make_record

KEYS = {"name", "statement", "bound", "measured", "held", "trials", "seed", "regime"}


@pytest.mark.slow
def test_verify_quick_writes_records(tmp_path):
    out = tmp_path / "records.json"
    proc = subprocess.run([sys.executable, "-m", "rmt", "verify", "--quick", "--no-progress", "--json", str(out)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    records = json.loads(out.read_text())
    assert len(records) >= 9
    for r in records:
        assert KEYS <= set(r)
        assert isinstance(r["held"], bool) and r["held"] == (r["measured"] <= r["bound"])
    assert "held" in proc.stdout and "0 failed" in proc.stdout


def test_record_held_follows_the_bound_and_table_marks_failures():
    ok = make_record("a", "x <= 1", 1.0, 0.5, 3, 0)
    bad = make_record("b", "x <= 1", 1.0, 2.0, 3, 0)
    outside = make_record("c", "x <= 1", 1.0, 2.0, 3, 0, regime="outside")
    assert ok.held and not bad.held and not outside.held
    table = _format_table([ok, bad, outside])
    assert "NO" in table.splitlines()[3] and " no " in table.splitlines()[4]
    with pytest.raises(ValueError, match="regime"):
        make_record("d", "x", 1.0, 0.0, 1, 0, regime="sometimes")
