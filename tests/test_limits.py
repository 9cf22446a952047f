import pytest

from posebowl.errors import InputError
from posebowl.limits import GIB, MIB, PROFILES, Limits, parse_bytes, parse_duration, profile


def test_r5_is_the_platform():
    r5 = profile()
    assert (r5.memory_bytes, r5.cpus, r5.pids, r5.time_limit_s) == (4 * GIB, 4.0, 1024, 10800.0)
    assert r5.log_bytes == 50 * MIB


def test_cpus_are_capped_at_the_host():
    assert Limits(cpus=4).effective_cpus(host_cpus=2) == 2.0
    assert Limits(cpus=1.4).effective_cpus(host_cpus=16) == 1.4
    assert Limits(cpus=None).effective_cpus(host_cpus=2) is None


def test_shm_follows_memory_unless_set():
    assert Limits(memory_bytes=GIB).effective_shm_bytes == GIB
    assert Limits(memory_bytes=None).effective_shm_bytes == 8 * GIB
    assert Limits(shm_bytes=64 * MIB).effective_shm_bytes == 64 * MIB


def test_overrides_ignore_none():
    lim = PROFILES["r5"].with_overrides(memory_bytes=None, pids=64)
    assert lim.memory_bytes == 4 * GIB and lim.pids == 64


@pytest.mark.parametrize("bad", [{"memory_bytes": 1}, {"pids": 0}, {"time_limit_s": 0}])
def test_unusable_limits_are_refused(bad):
    with pytest.raises(InputError, match="below the smallest usable value"):
        Limits(**bad)


def test_unknown_profile_names_the_known_ones():
    with pytest.raises(InputError, match="atom, r5, unlimited"):
        profile("r6")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("4g", 4 * GIB),
        ("256M", 256 * MIB),
        ("512mib", 512 * MIB),
        ("1024", 1024),
        ("1.5G", 3 * GIB // 2),
    ],
)
def test_parse_bytes(text, expected):
    assert parse_bytes(text) == expected


@pytest.mark.parametrize("bad", ["", "g", "-1g", "4x", "four"])
def test_parse_bytes_rejects(bad):
    with pytest.raises(InputError, match="is not a size"):
        parse_bytes(bad)


@pytest.mark.parametrize(
    ("text", "expected"), [("90", 90), ("90s", 90), ("15m", 900), ("3h", 10800), ("1h30m", 5400)]
)
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "0", "abc", "1x"])
def test_parse_duration_rejects(bad):
    with pytest.raises(InputError):
        parse_duration(bad)
