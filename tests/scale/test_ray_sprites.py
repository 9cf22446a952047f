"""``synth sprites`` on a real Ray cluster: Blender on the workers, same bytes as local."""

from __future__ import annotations

import pytest

from posebowl.errors import SetupError
from posebowl.scale import Tally, ray_installed
from posebowl.synth import sprites
from tests.scale.conftest import NEEDS_SCALE, files

pytestmark = [
    pytest.mark.ray,
    pytest.mark.blender,
    pytest.mark.skipif(not ray_installed(), reason=NEEDS_SCALE),
]

TINY = {"resolution": 48, "samples": 2, "threads": 1}
TASKS = sprites.plan_tasks([2, 9], 1)  # two designs: one Ray task each


@pytest.fixture(scope="module")
def venv_ready() -> None:
    try:
        sprites.blender_python()
    except SetupError:
        pytest.skip("no Blender venv: run `posebowl synth setup` (make test builds it)")


def test_sprites_on_ray_are_the_local_bytes_and_resume(venv_ready, executor, tmp_path):
    sprites.render_sprites(TASKS, tmp_path / "local", **TINY)
    seen: list[Tally] = []
    report = sprites.render_sprites(
        TASKS, tmp_path / "ray", executor=executor, progress=seen.append, **TINY
    )
    assert (report.rendered, report.skipped) == (2, 0) and len(report.render_seconds) == 2
    assert files(tmp_path / "ray") == files(tmp_path / "local")  # sprites and index.csv
    # a truncated sprite is not trusted by its name: it is rendered again
    victim = tmp_path / "ray" / TASKS[0].name
    victim.write_bytes(victim.read_bytes()[:-20])
    again = sprites.render_sprites(TASKS, tmp_path / "ray", executor=executor, **TINY)
    assert (again.rendered, again.skipped) == (1, 1)
    assert files(tmp_path / "ray") == files(tmp_path / "local")


def test_a_missing_venv_on_the_workers_names_the_node_and_is_not_retried(executor, tmp_path):
    seen: list[Tally] = []
    with pytest.raises(SetupError, match=r"2 of 2 sprite tasks failed .*On node .*does not exist"):
        sprites.render_sprites(
            TASKS,
            tmp_path,
            venv=tmp_path / "no-venv",
            executor=executor,
            progress=seen.append,
            **TINY,
        )
    assert seen[-1].failed == 2 and seen[-1].retries == 0
