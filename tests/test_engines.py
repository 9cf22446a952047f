import pytest

from posebowl import engines
from posebowl.engines.bwrap import BwrapEngine
from posebowl.errors import InputError, SetupError


class Broken:
    name = "broken"

    def health_check(self):
        return "broken on purpose. Fix it."

    def execute(self, request, on_output):  # pragma: no cover - never reached
        raise AssertionError


def test_unknown_engine_names_the_known_ones():
    with pytest.raises(InputError, match="auto, bwrap"):
        engines.select("podman")


def test_auto_fails_closed_with_every_reason(monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "broken", Broken)
    monkeypatch.setattr(engines, "AUTO_ORDER", ["broken"])
    with pytest.raises(SetupError, match="broken on purpose"):
        engines.select("auto")
    with pytest.raises(SetupError, match="broken on purpose"):
        engines.select("broken")


def test_missing_bwrap_is_reported_with_the_install_command(tmp_path):
    engine = BwrapEngine(bwrap=str(tmp_path / "no-such-bwrap"))
    reason = engine.health_check()
    assert reason is not None and "apt-get install bubblewrap" in reason


def test_a_bwrap_that_cannot_make_namespaces_fails_closed(tmp_path):
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    reason = BwrapEngine(bwrap=str(fake)).health_check()
    assert reason is not None
    assert "setting up uid map: Permission denied" in reason
    assert "apparmor_restrict_unprivileged_userns" in reason
