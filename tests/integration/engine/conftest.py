"""Engine tests say which DSL features they run (`@pytest.mark.runs("task.set", ...)`):
tests/unit/dsl/test_dsl_features.py fails for a supported feature that no test runs."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "runs(*features): the FEATURES keys (tflow_workers.dsl.features) this test runs "
        "through the engine on the Temporal dev server",
    )
