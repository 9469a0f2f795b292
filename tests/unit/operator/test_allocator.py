"""The operator's glibc allocator settings: applied unless the environment sets them,
in which case glibc already read the environment's value at start."""

from __future__ import annotations

from tflow_operator import allocator


def test_both_settings_are_applied_by_default() -> None:
    assert allocator.tune({}) == {"MALLOC_ARENA_MAX": 2, "MALLOC_MMAP_THRESHOLD_": 131072}


def test_the_environment_wins() -> None:
    assert allocator.tune({"MALLOC_ARENA_MAX": "4"}) == {"MALLOC_MMAP_THRESHOLD_": 131072}
    assert allocator.tune({"MALLOC_ARENA_MAX": "4", "MALLOC_MMAP_THRESHOLD_": "65536"}) == {}
