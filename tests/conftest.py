"""Shared fixtures: the TVM target every test compiles for."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def target():
    from evo.target import make_target

    return make_target()
