"""Where the shared data and models are, and the skip-or-fail rule for them (as in test_data.py)."""
import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("RMT_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
MODELS = Path(os.environ.get("RMT_MODELS_DIR") or SHARED.parent / "models")
# .ci/run sets RMT_REQUIRE_DATA: there a missing shared data set or checkpoint fails the test instead of skipping it
REQUIRED = bool(os.environ.get("RMT_REQUIRE_DATA"))


def need(path: Path) -> Path:
    """``path`` if it exists; else skip (locally) or fail (under RMT_REQUIRE_DATA)."""
    if not path.exists():
        if REQUIRED:
            pytest.fail(f"{path} is missing and RMT_REQUIRE_DATA is set")
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture
def shared_env(monkeypatch):
    """Point RMT_DATA_DIR / RMT_MODELS_DIR at the shared folders (skipping when absent)."""
    need(SHARED)
    need(MODELS)
    monkeypatch.setenv("RMT_DATA_DIR", str(SHARED))
    monkeypatch.setenv("RMT_MODELS_DIR", str(MODELS))
    monkeypatch.setenv("RMT_REQUIRE_DATA", "1")
    return SHARED, MODELS
