"""cgroup bookkeeping on fake cgroup trees (the kernel's side is tested by the sandbox suite)."""

from pathlib import Path

import pytest

from posebowl.engines import cgroups
from posebowl.limits import GIB, Limits

V1_MOUNTINFO = """\
22 1 0:20 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755
30 22 0:26 / {root}/memory rw,relatime - cgroup cgroup rw,memory
31 22 0:27 / {root}/pids rw,relatime - cgroup cgroup rw,pids
32 22 0:28 / {root}/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
33 22 0:29 / {root}/unified rw,relatime - cgroup2 cgroup2 rw
"""
V1_PROC = "4:memory:/jobs/me\n3:pids:/\n2:cpu,cpuacct:/\n0::/\n"


def test_parse_mountinfo_and_proc_cgroup():
    mounts = cgroups.parse_mountinfo(V1_MOUNTINFO.format(root="/sys/fs/cgroup"))
    assert [(m.fstype, sorted(m.controllers)) for m in mounts] == [
        ("cgroup", ["memory"]),
        ("cgroup", ["pids"]),
        ("cgroup", ["cpu", "cpuacct"]),
        ("cgroup2", []),
    ]
    own = cgroups.parse_proc_cgroup(V1_PROC)
    assert own["memory"] == "/jobs/me" and own["cpuacct"] == "/" and own[""] == "/"


def test_mount_root_is_stripped_from_the_path():
    m = cgroups.Mount("cgroup2", "/lxc/box", Path("/sys/fs/cgroup"), frozenset())
    assert cgroups._host_dir(m, "/lxc/box/sub") == Path("/sys/fs/cgroup/sub")
    assert cgroups._host_dir(m, "/other") == Path("/sys/fs/cgroup/other")


def fake_v1(tmp_path: Path) -> Path:
    for sub in ("memory/jobs/me", "pids", "cpu,cpuacct"):
        (tmp_path / sub).mkdir(parents=True)
    return tmp_path


def test_v1_writes_every_limit_next_to_our_own_cgroup(tmp_path):
    root = fake_v1(tmp_path)
    lim = Limits(memory_bytes=GIB, pids=64, cpus=1.5)
    cg = cgroups.create(lim, V1_MOUNTINFO.format(root=root), V1_PROC)
    assert cg.version == 1
    mem = cg.dirs["memory"]
    assert mem.parent == root / "memory/jobs/me" and mem.name.startswith("posebowl-")
    assert (mem / "memory.limit_in_bytes").read_text() == str(GIB)
    assert (cg.dirs["pids"] / "pids.max").read_text() == "64"
    assert cg.dirs["cpu"] == cg.dirs["cpuacct"]  # co-mounted: one directory
    quota = int(min(1.5, cg_cpus()) * 100_000)
    assert (cg.dirs["cpu"] / "cpu.cfs_quota_us").read_text() == str(quota)
    assert all(e.enforced for e in cg.enforced.values()), cg.enforced


def cg_cpus() -> float:
    import os

    return float(os.cpu_count() or 1)


def test_v1_usage_is_read_from_the_stat_files(tmp_path):
    root = fake_v1(tmp_path)
    cg = cgroups.create(Limits(), V1_MOUNTINFO.format(root=root), V1_PROC)
    (cg.dirs["memory"] / "memory.max_usage_in_bytes").write_text("123456\n")
    (cg.dirs["memory"] / "memory.oom_control").write_text(
        "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n"
    )
    (cg.dirs["pids"] / "pids.events").write_text("max 5\n")
    (cg.dirs["cpuacct"] / "cpuacct.usage").write_text("1500000000\n")
    u = cg.usage()
    assert (u.peak_memory_bytes, u.oom_kills, u.pids_limit_hit, u.cpu_s) == (123456, 2, True, 1.5)


def test_v1_without_a_writable_hierarchy_says_so(tmp_path):
    root = tmp_path  # no controller folders: mkdir fails
    cg = cgroups.create(Limits(), V1_MOUNTINFO.format(root=root / "missing"), V1_PROC)
    assert not any(e.enforced for e in cg.enforced.values())
    assert "cannot create a cgroup" in cg.enforced["memory"].how
    assert cg.usage().oom_kills == 0


V2_MOUNTINFO = "40 1 0:30 / {root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"


def test_v2_uses_a_delegated_sibling(tmp_path):
    parent = tmp_path / "user.slice" / "user@1000.service" / "app.slice"
    (parent / "term.scope").mkdir(parents=True)
    (parent / "cgroup.controllers").write_text("cpu io memory pids\n")
    (parent / "cgroup.subtree_control").write_text("cpu memory pids\n")
    proc = "0::/user.slice/user@1000.service/app.slice/term.scope\n"
    cg = cgroups.create(
        Limits(memory_bytes=GIB, pids=100), V2_MOUNTINFO.format(root=tmp_path), proc
    )
    d = cg.dirs["memory"]
    assert cg.version == 2 and d.parent == parent
    assert (d / "memory.max").read_text() == str(GIB)
    assert (d / "memory.swap.max").read_text() == "0"
    assert (d / "pids.max").read_text() == "100"
    assert (d / "cpu.max").read_text().endswith(" 100000")
    assert all(e.enforced for e in cg.enforced.values())
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n")
    (d / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\n")
    (d / "memory.peak").write_text("777\n")
    u = cg.usage()
    assert (u.oom_kills, u.cpu_s, u.peak_memory_bytes) == (1, 2.5, 777)


def test_v2_without_delegation_is_reported_not_enforced(tmp_path):
    parent = tmp_path / "user.slice"
    (parent / "me.scope").mkdir(parents=True)
    (parent / "cgroup.controllers").write_text("memory pids\n")
    (parent / "cgroup.subtree_control").write_text("")
    # the fake file takes our "+memory" write literally, unlike the kernel: nothing is enabled
    (parent / "cgroup.subtree_control").chmod(0o444)
    cg = cgroups.create(Limits(), V2_MOUNTINFO.format(root=tmp_path), "0::/user.slice/me.scope\n")
    if cg.enforced["memory"].enforced:
        pytest.skip("running as root: the read-only fake file was written anyway")
    assert "not delegated" in cg.enforced["memory"].how


def test_no_cgroup_filesystem_at_all():
    cg = cgroups.create(Limits(), mountinfo="", proc_cgroup="")
    assert cg.version is None and cg.dirs == {}
    assert cg.enforced["memory"].how == "no cgroup filesystem is mounted"
    cg.join_self()  # nothing to join: a no-op
    cg.close()


CONTAINER = "ab12" * 16
V2_MOUNTINFO = "40 22 0:30 / {root} rw,nosuid - cgroup2 cgroup2 rw\n"


def test_of_process_finds_a_v1_containers_cgroups_and_reads_them(tmp_path):
    path = f"/docker/{CONTAINER}"
    proc = f"4:memory:{path}\n3:pids:{path}\n2:cpu,cpuacct:{path}\n1:name=systemd:/\n"
    cg = cgroups.of_process(1, CONTAINER, V1_MOUNTINFO.format(root=tmp_path), proc)
    assert cg is not None and cg.version == 1
    assert cg.dirs == {
        "memory": tmp_path / "memory" / path.lstrip("/"),
        "pids": tmp_path / "pids" / path.lstrip("/"),
        "cpuacct": tmp_path / "cpu,cpuacct" / path.lstrip("/"),
    }
    cg.dirs["memory"].mkdir(parents=True)
    (cg.dirs["memory"] / "memory.max_usage_in_bytes").write_text("4096\n")
    assert cg.usage().peak_memory_bytes == 4096


def test_of_process_finds_a_v2_containers_cgroup(tmp_path):
    path = f"/system.slice/docker-{CONTAINER}.scope"
    cg = cgroups.of_process(1, CONTAINER, V2_MOUNTINFO.format(root=tmp_path), f"0::{path}\n")
    assert cg is not None and cg.version == 2
    d = tmp_path / path.lstrip("/")
    assert set(cg.dirs.values()) == {d}
    d.mkdir(parents=True)
    (d / "memory.peak").write_text("8192\n")
    (d / "memory.events").write_text("oom 1\noom_kill 1\n")
    u = cg.usage()
    assert (u.peak_memory_bytes, u.oom_kills) == (8192, 1)


@pytest.mark.parametrize("must_contain", ["", "ffff" * 16])
def test_of_process_never_takes_a_cgroup_that_is_not_the_containers(tmp_path, must_contain):
    v1 = f"4:memory:/docker/{CONTAINER}\n3:pids:/\n2:cpu,cpuacct:/\n"
    assert cgroups.of_process(1, must_contain, V1_MOUNTINFO.format(root=tmp_path), v1) is None
    v2 = "0::/user.slice\n"
    assert cgroups.of_process(1, must_contain, V2_MOUNTINFO.format(root=tmp_path), v2) is None


def test_sweep_keeps_the_empty_cgroups_of_live_runs(tmp_path):
    """A concurrent run's cgroup is empty until its child joins: sweeping it broke that run."""
    import os
    import subprocess

    from posebowl.engines import cgroups

    dead = subprocess.Popen(["true"])
    dead.wait()
    live_dir = tmp_path / f"{cgroups.PREFIX}{os.getpid()}-aaaa"
    dead_dir = tmp_path / f"{cgroups.PREFIX}{dead.pid}-bbbb"
    odd_dir = tmp_path / f"{cgroups.PREFIX}notapid"
    for d in (live_dir, dead_dir, odd_dir):
        d.mkdir()
    cgroups._sweep_stale(tmp_path)
    assert live_dir.is_dir()
    assert not dead_dir.exists() and not odd_dir.exists()
