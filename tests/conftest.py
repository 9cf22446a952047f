from __future__ import annotations

import os
import secrets
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import settings

# `make test-fast` runs the property tests with fewer examples (the full lane keeps the defaults,
# or each test's own setting)
settings.register_profile("fast", max_examples=20, deadline=None)
if os.environ.get("POSEBOWL_TEST_LANE") == "fast":
    settings.load_profile("fast")


def make_ids(n: int, seed: int = 0) -> list[str]:
    """Deterministic 32-hex image ids, like the competition's."""
    import random

    rng = random.Random(seed)
    return [f"{rng.getrandbits(128):032x}" for _ in range(n)]


def boxes_frame(ids: list[str], rows: list[tuple[float, float, float, float]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["xmin", "ymin", "xmax", "ymax"])
    df.insert(0, "image_id", ids)
    return df


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    """A data folder in the competition layout: 5 blank PNG names + submission_format.csv."""
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    ids = make_ids(5, seed=secrets.randbelow(1000))
    for i in ids:
        (data / "images" / f"{i}.png").write_bytes(b"")
    boxes_frame(ids, [(0, 0, 0, 0)] * 5).to_csv(data / "submission_format.csv", index=False)
    return data


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip tests marked ``train`` when the [train] extra (torch, ultralytics) is absent."""
    from posebowl.train import train_extra_installed

    if train_extra_installed():
        return
    skip = pytest.mark.skip(reason="needs the [train] extra: pip install -e '.[train]'")
    for item in items:
        if item.get_closest_marker("train") is not None:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _no_engine_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's POSEBOWL_ENGINE / POSEBOWL_IMAGE must not change what the tests run."""
    monkeypatch.delenv("POSEBOWL_ENGINE", raising=False)
    monkeypatch.delenv("POSEBOWL_IMAGE", raising=False)


def _engine_params() -> list:
    from .sandbox_helpers import engine_params

    return engine_params()


@pytest.fixture(params=_engine_params())
def engine(request: pytest.FixtureRequest):
    """Each healthy sandbox engine in turn (bwrap, docker), marked and skipped with a reason."""
    from .sandbox_helpers import make_engine

    return make_engine(request.param)
