"""Run a command in a Landlock domain of its own: ``python -I -S confine.py CMD [ARGS...]``.

The entrypoint starts main.sh through this script (inside the sandbox, with the runtime's or
the image's Python: standard library only, any Python 3). It creates a Landlock ruleset that
allows every file access (a rule on ``/`` grants all the rights it handles), so files behave
exactly as before, and restricts itself to it before ``exec``-ing the command. What the domain
changes: its processes can no longer ``ptrace`` processes outside it (the entrypoint, the
sandbox's init) nor read their ``/proc/PID/environ`` or memory, and, with Landlock ABI 6 or
newer, can neither signal them nor reach their abstract UNIX sockets. Processes started by
main.sh stay in the domain and may still debug one another.

It prints one line for the host before the exec::

    posebowl-entrypoint: confinement landlock ABI 7
    posebowl-entrypoint: confinement none (REASON)

and runs the command either way (the host reports confinement as not enforced).
"""

import ctypes
import ctypes.util
import os
import platform
import sys

# x86_64 and aarch64 share these numbers (the generic syscall table from Linux 5.13 on)
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
# file-system rights Landlock knows, by the ABI that introduced them
FS_RIGHTS = {1: (1 << 13) - 1, 2: 1 << 13, 3: 1 << 14, 5: 1 << 15}
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0
SCOPE_SIGNAL = 1 << 1


class RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def say(text):
    sys.stdout.write(f"posebowl-entrypoint: {text}\n")
    sys.stdout.flush()


def confine():
    """Restrict this process to a fresh Landlock domain; the ABI version, or why not."""
    if platform.system() != "Linux" or platform.machine() not in ("x86_64", "aarch64"):
        raise OSError(0, "Landlock needs Linux on x86_64 or aarch64")
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), CREATE_RULESET_VERSION)
    if abi < 1:
        err = ctypes.get_errno()
        raise OSError(err, f"Landlock is not available: {os.strerror(err)}")
    fs = 0
    for version, rights in FS_RIGHTS.items():
        if abi >= version:
            fs |= rights
    attr = RulesetAttr(fs, 0, SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(RulesetAttr) if abi >= 6 else 16  # older kernels know two fields
    ruleset = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"landlock_create_ruleset failed: {os.strerror(err)}")
    try:
        root = os.open("/", os.O_PATH | os.O_CLOEXEC)
        try:
            rule = PathBeneathAttr(fs, root)
            if libc.syscall(SYS_ADD_RULE, ruleset, RULE_PATH_BENEATH, ctypes.byref(rule), 0):
                err = ctypes.get_errno()
                raise OSError(err, f"landlock_add_rule failed: {os.strerror(err)}")
        finally:
            os.close(root)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            err = ctypes.get_errno()
            raise OSError(err, f"no_new_privs failed: {os.strerror(err)}")
        if libc.syscall(SYS_RESTRICT_SELF, ruleset, 0):
            err = ctypes.get_errno()
            raise OSError(err, f"landlock_restrict_self failed: {os.strerror(err)}")
    finally:
        os.close(ruleset)
    return abi


def main(argv):
    if not argv:
        sys.exit("usage: confine.py COMMAND [ARGS...]")
    try:
        say(f"confinement landlock ABI {confine()}")
    except OSError as exc:
        say(f"confinement none ({exc.strerror or exc})")
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.exit(f"posebowl-entrypoint: cannot run {argv[0]}: {exc.strerror}")


if __name__ == "__main__":
    main(sys.argv[1:])
