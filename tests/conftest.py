from __future__ import annotations

import pytest

from lakehouse import Lakehouse


@pytest.fixture
def lh(tmp_path) -> Lakehouse:
    return Lakehouse(tmp_path / "warehouse")
