"""Fixtures shared by several test files. Plain helpers live in the `*_fixtures.py` modules beside this file
(datasets, media, small detectors), which the tests import by name."""
from __future__ import annotations

import pytest

from core.facemodel import FaceModel, load_facemodel


@pytest.fixture(scope="session")
def model() -> FaceModel:
    """The canonical ICT face model, loaded once for the session (a frozen
    dataclass that no test changes)."""
    return load_facemodel()
