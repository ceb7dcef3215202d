"""Run untrusted programs (model-written code) so that they cannot harm the host or each other.

    >>> run_program("assert sorted([3, 1, 2]) == [1, 2, 3]")
    ExecResult(passed=True, status='passed', detail='')
    >>> run_program("while True: pass", timeout=2).status
    'timeout'
    >>> [r.passed for r in run_many(["x = 1", "assert 1 == 2"], workers=2)]
    [True, False]

Each program runs in its own process, started fresh (`python -I`, no inherited fds, a minimal
environment, a new session) by a small trusted *launcher* that sets the jail up before the program's
first line runs. What the jail holds, strongest first (`isolation()` says which the host allows):

* **root+namespaces** (root, as in this repo's CI and containers): a new network namespace (only a
  down loopback: every connect fails); a new PID namespace (the program runs as PID 2 under a trusted
  reaper PID 1; when either or the supervisor dies, the kernel kills every process the program forked,
  `setsid` or not); a new mount namespace whose whole tree is read-only, with small private tmpfs on
  /tmp, /var/tmp, /dev/shm and /run (bounded disk use, gone afterwards); and a *unique* unprivileged
  uid per run (it can't write, delete or signal anything of the host's; RLIMIT_NPROC bounds its forks).
* **userns+namespaces** (not root, user namespaces allowed): the same namespaces inside a user
  namespace; the uid is the user's own, so the read-only mount tree and the masks below are what protect
  the user's files.
* **root+uid** (root without CAP_SYS_ADMIN, e.g. default Docker): the unique uid only; leftovers are
  found by uid and killed. The network is open and host files readable by others are readable.
* **basic** (nothing else works): resource limits, fresh temp dir, process-group kill: the program
  could touch the user's files and the network.

The two namespace jails also mount their own /proc (no host process, command line or environment is
visible) and put an empty read-only tmpfs over the user's home, root's home, the XDG config/data/cache
folders and every folder given to `hidden()` (`score_store` gives the store's): ~/.netrc, ~/.config, API
keys in dotfiles and the store itself can't be read. Interpreter paths under them are bind-mounted
elsewhere first, read-only. The program's environment is PATH, LANG, HOME (its own temp dir) and a few
thread counts: no variable of the caller's (no `*_API_KEY`) reaches it.

The weaker jails (root+uid, basic) are refused with a `SandboxError` unless the user sets
`GBG_SANDBOX_ALLOW_WEAK=1`; `isolation()["name"]` is recorded with every scoring run that used the sandbox.

Always: RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (also bounds what it prints: stdout and
stderr are files), RLIMIT_NOFILE, no core dumps, `no_new_privs` (setuid binaries stay powerless),
a wall-clock timeout after which the whole process group (and, without a PID namespace, every
process of the sandbox uid) is SIGKILLed, and a temp dir removed afterwards.

**How "passed" is decided.** The parent draws a random nonce per run and hands it to the launcher
through an unlinked temp file on stdin, which the launcher reads and replaces by /dev/null before the
program starts; the nonce is in no file, argument or environment variable the program can read. The
launcher `exec`s the program and prints the nonce only if the program's last line returned normally.
passed = exit code 0 *and* the nonce at the end of stdout. So `sys.exit(0)`, `os._exit(0)`, a killed
process, or printing "passed" never pass. Benchmark tests go in `test=`: they run *after* the completion
(so a completion cannot pre-empt them by defining `check`), in their own namespace, with the builtins
as they were before the completion ran (so `builtins.abs = lambda x: 0` does not fool `assert abs(...)`).
Limit of the threat model: the nonce lives in the launcher's memory in the same process, so a program
written to *introspect the interpreter* (stack frames, `gc`, /proc/self/mem) could forge a pass; and,
as in OpenAI's harness, an object whose `__eq__` always returns True satisfies `assert f(x) == y`.
Containment (files, network, processes, memory) does not rely on the program's cooperation.

**Whose failure** is decided by the parent alone, from a pipe the program never holds: the launcher writes
"ready" on it and closes it right before the program's first line, or "fail:<why>" if the jail could not
be built. Without "ready" the program never ran: `ExecResult.sandbox_failed` (the scorers raise
`SandboxError` instead of recording a 0); with it, whatever happened is the program's doing, whatever it
prints or raises (an exception class named "sandbox" is reported as "(program) sandbox: ...").
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["ExecResult", "SandboxError", "run_program", "run_many", "isolation", "hidden", "ALLOW_WEAK"]

# Linux constants (sched.h / mount.h); Python 3.11's os has no unshare().
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000

# The launcher's last stderr line when the program raised. A program can fake it, but it only names the program's own error.
EXC_TAG = "GBG-SANDBOX-EXC"
SETUP_EXIT = 97
ALLOW_WEAK = "GBG_SANDBOX_ALLOW_WEAK"  # set to 1 to run untrusted code in a jail without namespaces
NAMESPACE_JAILS = ("root+namespaces", "userns+namespaces")
OUTPUT_TAIL = 8192  # bytes of stdout/stderr read back


class SandboxError(RuntimeError):
    """The sandbox itself can't run programs here (not something a program did)."""


@dataclass(frozen=True)
class ExecResult:
    passed: bool
    status: str  # "passed" | "failed" (an assertion failed or it ended early) | "timeout" | "error" (other exception, resource limit, or sandbox failure)
    detail: str = ""  # e.g. "AssertionError", "MemoryError", "timeout after 10 s", "exited early (code 0) without finishing"
    # True when the program never ran (jail setup or process start failed): don't record it as the program's score.
    # Set by the parent only (no "ready" on the launcher's pipe, or the start itself failed), never from output.
    sandbox_failed: bool = field(default=False, repr=False)


# --- the launcher: trusted code in launcher.py, run as `python -I launcher.py`, before the program ---------
LAUNCHER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "launcher.py")


# --- choosing the strongest jail this host allows ------------------------------------------------
_PLANS_LOCK = threading.Lock()
_PLAN: dict | None = None
_UID_LOCK = threading.Lock()
_UID_SLOTS = 4096  # concurrent runs per process
_UID_BASE = 0x5A000000 + secrets.randbelow(1 << 14) * _UID_SLOTS  # per process; uids far above real accounts
_uids_in_use: set[int] = set()


def _candidate_plans() -> list[dict]:
    if os.name != "posix" or not sys.platform.startswith("linux"):
        return [dict(name="basic", unshare=0, mount=False, uid=False)]
    if os.geteuid() == 0:
        return [
            dict(name="root+namespaces", unshare=CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID, mount=True, uid=True),
            dict(name="root+uid", unshare=0, mount=False, uid=True),
            dict(name="basic", unshare=0, mount=False, uid=False),
        ]
    return [
        dict(name="userns+namespaces", unshare=CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID, mount=True, uid=False),
        dict(name="basic", unshare=0, mount=False, uid=False),
    ]


_PROBE = """
import fractions, statistics, hashlib, decimal, heapq, itertools, collections, math, re, string, typing
open("probe.txt", "w").write("ok")
assert open("probe.txt").read() == "ok"
assert hashlib.md5(b"x").hexdigest() and statistics.mean([1, 2]) == 1.5
"""


def isolation() -> dict:
    """The jail this host allows, e.g. {'name': 'root+namespaces', 'net': True, 'pid': True, 'files': True, 'uid': True}.

    net: no network; pid: own PID namespace; files: host files read-only (mount namespace) or foreign
    (uid drop); uid: a unique unprivileged uid per run (bounds forks, can't signal host processes).
    """
    global _PLAN
    with _PLANS_LOCK:
        if _PLAN is None:
            for plan in _candidate_plans():
                r = _run(_PROBE, plan, timeout=30, memory_mb=1024, fsize_mb=16, disk_mb=16, nproc=32)
                if r.passed:
                    _PLAN = plan
                    break
            else:  # not even the basic launcher runs: report it on every call rather than guess
                raise SandboxError(f"sandbox: cannot run a probe program here ({r.status}: {r.detail})")
        p = _PLAN
    return dict(
        name=p["name"],
        net=bool(p["unshare"] & CLONE_NEWNET),
        pid=bool(p["unshare"] & CLONE_NEWPID),
        files=bool(p["mount"] or p["uid"]),
        uid=p["uid"],
    )


def _require_namespaces() -> None:
    """Refuse a jail weaker than the namespace jails unless the user asked for it by name."""
    name = _PLAN["name"]
    if name in NAMESPACE_JAILS:
        return
    if os.environ.get(ALLOW_WEAK) != "1":
        raise SandboxError(
            f"sandbox: this host allows only the '{name}' jail (no network, PID and mount namespaces: untrusted "
            f"code could reach the network and files readable by this user); set {ALLOW_WEAK}=1 to run it anyway"
        )
    warnings.warn(
        f"gbg sandbox: {ALLOW_WEAK}=1: untrusted code runs in the '{name}' jail, with the network open",
        RuntimeWarning,
        stacklevel=3,
    )


_HIDDEN_LOCK = threading.Lock()
_hidden: dict[str, int] = {}


@contextmanager
def hidden(*paths):
    """Within the block, programs can't read these folders (an empty read-only folder in their place).

    The user's home, root's home and the XDG folders are always hidden; `score_store` adds the store's folder.
    Only the namespace jails can hide; the weaker ones rely on file permissions."""
    real = [os.path.realpath(os.fspath(p)) for p in paths]
    with _HIDDEN_LOCK:
        for p in real:
            _hidden[p] = _hidden.get(p, 0) + 1
    try:
        yield
    finally:
        with _HIDDEN_LOCK:
            for p in real:
                _hidden[p] -= 1
                if not _hidden[p]:
                    del _hidden[p]


# System folders a mistaken HOME (HOME=/ for a daemon) must not make the jail hide.
_NEVER_HIDE = {"/", "/usr", "/bin", "/sbin", "/lib", "/lib64", "/etc", "/dev", "/proc", "/sys", "/tmp", "/var", "/run"}


def _paths_to_hide() -> list[str]:
    """Folders masked in the jail: homes and credentials (see the module doc), and what `hidden()` holds."""
    cands = [os.path.expanduser("~"), "/root"]
    try:
        import pwd

        cands.append(pwd.getpwuid(os.getuid()).pw_dir)
    except (ImportError, KeyError):
        pass
    cands += [
        os.environ[v] for v in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_STATE_HOME") if os.environ.get(v)
    ]
    with _HIDDEN_LOCK:
        cands += list(_hidden)
    out = []
    for p in cands:
        p = os.path.realpath(p)
        if p not in _NEVER_HIDE and os.path.isdir(p) and p not in out:
            out.append(p)
    return out


_RUNS_LOCK = threading.Lock()
_runs_by_jail: dict[str, int] = {}


def runs_by_jail() -> dict[str, int]:
    """How many programs this process ran in each jail (a scorer compares it before and after, to record the jail)."""
    with _RUNS_LOCK:
        return dict(_runs_by_jail)


def _take_uid() -> int:
    with _UID_LOCK:
        uid = next(u for u in range(_UID_BASE, _UID_BASE + _UID_SLOTS) if u not in _uids_in_use)
        _uids_in_use.add(uid)
        return uid


def _give_uid(uid: int) -> None:
    with _UID_LOCK:
        _uids_in_use.discard(uid)


# --- running one program --------------------------------------------------------------------------
def run_program(
    code: str,
    timeout: float = 10,
    memory_mb: int = 1024,
    fsize_mb: int = 16,
    disk_mb: int = 64,
    nproc: int = 32,
    test: str | None = None,
) -> ExecResult:
    """Run `code` in a fresh jailed process; passed iff it runs to its last line (see the module doc).

    test: code run after `code` in a namespace of its own that sees `code`'s names but the builtins
    as they were before `code` ran (a completion can't patch `abs` or `len` for the benchmark's asserts).

    timeout: wall-clock seconds (CPU time is limited to the same); memory_mb: address space;
    fsize_mb: largest file it may write (stdout/stderr included); disk_mb: size of its private /tmp
    (namespaced jails); nproc: processes/threads of the sandbox uid (root and userns jails).
    Raises SandboxError when no jail works here, or only a weaker one and GBG_SANDBOX_ALLOW_WEAK=1 is not set.
    """
    isolation()
    _require_namespaces()
    with _RUNS_LOCK:
        _runs_by_jail[_PLAN["name"]] = _runs_by_jail.get(_PLAN["name"], 0) + 1
    return _run(code, _PLAN, timeout=timeout, memory_mb=memory_mb, fsize_mb=fsize_mb, disk_mb=disk_mb, nproc=nproc, test=test)


def run_many(
    programs: Sequence[str | tuple[str, str]] | Iterable[str | tuple[str, str]], workers: int = 2, **kw
) -> list[ExecResult]:
    """`run_program` over many programs (code, or (code, test) pairs), `workers` at a time; results in input order."""
    programs = list(programs)
    isolation()  # probe once, before the threads start
    _require_namespaces()

    def one(p):
        return run_program(p[0], test=p[1], **kw) if isinstance(p, tuple) else run_program(p, **kw)

    if workers <= 1 or len(programs) <= 1:
        return [one(p) for p in programs]
    ex = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(ex.map(one, programs))
    finally:  # on Ctrl-C, don't start the queued programs
        ex.shutdown(wait=True, cancel_futures=True)


def _run(
    code: str, plan: dict, *, timeout: float, memory_mb: int, fsize_mb: int, disk_mb: int, nproc: int, test: str | None = None
) -> ExecResult:
    uid = _take_uid() if plan["uid"] else None
    workdir = tempfile.mkdtemp(prefix="gbg-sandbox-")
    proc, ready_r = None, None
    try:
        os.chmod(workdir, 0o700)
        if uid is not None:
            os.chown(workdir, uid, uid)
        cpu = max(1, int(timeout + 0.999))
        limits = {
            "RLIMIT_AS": [memory_mb << 20] * 2,
            "RLIMIT_CPU": [cpu, cpu + 1],
            "RLIMIT_FSIZE": [fsize_mb << 20] * 2,
            "RLIMIT_NOFILE": [256, 256],
            "RLIMIT_CORE": [0, 0],
        }
        if uid is not None or plan["unshare"] & CLONE_NEWUSER:
            limits["RLIMIT_NPROC"] = [nproc, nproc]  # counts only the sandbox's own processes here
        elif os.geteuid() != 0:
            n = _tasks_of_uid(os.getuid()) + nproc  # shared uid: leave room for what the user already runs
            limits["RLIMIT_NPROC"] = [n, n]
        nonce = secrets.token_hex(16)
        msg = dict(
            code=code,
            test=test,
            nonce=nonce,
            plan=dict(
                unshare=plan["unshare"],
                mount=plan["mount"],
                uid=uid,
                workdir=workdir,
                disk_mb=disk_mb,
                rlimits=limits,
                hide=_paths_to_hide() if plan["mount"] else [],
                setup_exit=SETUP_EXIT,
                exc_tag=EXC_TAG,
            ),
        )
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": workdir,
            "TMPDIR": "/tmp",
            # one BLAS/OpenMP thread: thread pools count against RLIMIT_NPROC and reserve address space
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        ready_r, ready_w = os.pipe()
        msg["plan"]["ready_fd"] = ready_w
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(json.dumps(msg).encode())
            fin.flush()
            fin.seek(0)
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen(
                    [sys.executable, "-I", LAUNCHER],
                    stdin=fin,
                    stdout=fout,
                    stderr=ferr,
                    cwd=workdir,
                    env=env,
                    close_fds=True,
                    pass_fds=(ready_w,),
                    start_new_session=True,
                )
            finally:
                os.close(ready_w)
            timed_out = False
            try:
                rc = proc.wait(timeout=timeout + 1.0)  # +1 s: interpreter start-up is not the program's time
            except subprocess.TimeoutExpired:
                timed_out = True
            _kill_all(proc, uid, plan)
            rc = proc.wait()
            elapsed = time.monotonic() - t0
            out, err = _tail(fout), _tail(ferr)
        os.set_blocking(ready_r, False)
        try:
            said = os.read(ready_r, 1024)  # every writer is gone: the launcher's processes are dead
        except BlockingIOError:
            said = b""
        return _verdict(said, rc, timed_out, out, err, nonce, timeout, elapsed)
    except Exception as e:  # the sandbox itself failed: never crash the scorer
        if proc is not None:
            _kill_all(proc, uid, plan)
        return ExecResult(False, "error", f"sandbox: {type(e).__name__}: {e}", sandbox_failed=True)
    finally:
        if ready_r is not None:
            os.close(ready_r)
        shutil.rmtree(workdir, onerror=_force_remove)
        if uid is not None:
            _give_uid(uid)


def _verdict(
    said: bytes, rc: int, timed_out: bool, out: bytes, err: bytes, nonce: str, timeout: float, elapsed: float
) -> ExecResult:
    """The verdict. `said`: what the launcher wrote on its pipe, which the program never holds: "ready" (the
    program ran: from here on everything is the program's doing) or "fail:<why>" (the jail could not be built)."""
    err_s = err.decode("utf-8", "replace")
    if said != b"ready":  # the program never started: the sandbox's failure, not the program's
        if said.startswith(b"fail:"):
            why = said[5:].decode("utf-8", "replace").strip()
        elif timed_out:
            why = "setup timed out"
        else:  # the launcher died before the program (its own stderr: no program ran to write there)
            why = f"launcher ended (code {rc}) before the program started: {err_s.strip()[-200:]}"
        return ExecResult(False, "error", "sandbox: " + why, sandbox_failed=True)
    result = _program_verdict(rc, timed_out, out, err_s, nonce, timeout, elapsed)
    if result.detail.startswith("sandbox"):  # the program's own words (an exception class named "sandbox"...)
        return ExecResult(result.passed, result.status, "(program) " + result.detail)
    return result


def _program_verdict(rc: int, timed_out: bool, out: bytes, err_s: str, nonce: str, timeout: float, elapsed: float) -> ExecResult:
    exc = None
    for line in reversed(err_s.splitlines()):
        if line.startswith(EXC_TAG + " "):
            exc = line[len(EXC_TAG) + 1 :].strip()
            break
    if timed_out:
        return ExecResult(False, "timeout", f"timeout after {timeout:g} s")
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else 0)
    if sig:
        if sig in (signal.SIGXCPU, signal.SIGKILL) and elapsed >= 0.9 * timeout:
            return ExecResult(False, "timeout", f"timeout (CPU time limit {timeout:g} s)")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {"SIGXFSZ": "file size limit exceeded", "SIGXCPU": "CPU time limit", "SIGSEGV": "segmentation fault"}.get(
            name, "killed"
        )
        return ExecResult(False, "error", f"{why} ({name})")
    if rc == 0 and out.rstrip(b"\n").endswith(nonce.encode()):
        return ExecResult(True, "passed", "")
    if exc:
        if exc.startswith("AssertionError"):
            return ExecResult(False, "failed", exc)
        if exc.startswith("SystemExit"):
            return ExecResult(False, "failed", f"exited early ({exc}) without finishing")
        return ExecResult(False, "error", exc)
    return ExecResult(False, "failed", f"exited early (code {rc}) without finishing")


def _kill_all(proc: subprocess.Popen, uid: int | None, plan: dict) -> None:
    """SIGKILL the launcher's process group, and without a PID namespace every process of the sandbox uid."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if uid is not None and not plan["unshare"] & CLONE_NEWPID:
        for _ in range(50):  # forks may race the sweep: repeat until none is left
            pids = _pids_of_uid(uid)
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.01)


def _pids_of_uid(uid: int) -> list[int]:
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if os.stat(f"/proc/{d}").st_uid == uid:
                    pids.append(int(d))
            except OSError:
                pass
    return pids


def _tasks_of_uid(uid: int) -> int:
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/status") as f:
                    s = f.read()
                if f"\nUid:\t{uid}\t" in s:
                    n += int(s.split("\nThreads:\t", 1)[1].split("\n", 1)[0])
            except (OSError, IndexError, ValueError):
                pass
    return n


def _tail(f) -> bytes:
    f.seek(0, os.SEEK_END)
    f.seek(max(0, f.tell() - OUTPUT_TAIL))
    return f.read()


def _force_remove(func, path, exc_info):
    """rmtree's error hook: a program may leave read-only dirs behind; make them writable and retry."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        func(path)
    except OSError:
        pass
