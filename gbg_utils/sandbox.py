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
* **root+uid** (root without CAP_SYS_ADMIN, e.g. default Docker): the unique uid only; leftovers are
  found by uid and killed.
* **userns+namespaces** (not root, user namespaces allowed): the same namespaces inside a user
  namespace; the uid is the user's own, so the read-only mount tree is what protects the user's files.
* **basic** (nothing else works): resource limits, fresh temp dir, process-group kill. A warning says
  so: the program could then touch the user's files and the network.

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

**Whose failure.** Right before the program's first line the launcher writes "ready" on a pipe and
closes it. Without it the program never ran: `ExecResult.sandbox_failed` (the scorers raise
`SandboxError` instead of recording a 0); with it, whatever happened is the program's doing.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Iterable, Sequence

__all__ = ["ExecResult", "SandboxError", "run_program", "run_many", "isolation"]

# Linux constants (sched.h / mount.h); Python 3.11's os has no unshare().
CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000

SETUP_FAILED = "GBG-SANDBOX-SETUP-FAILED"  # launcher's stderr tag when the jail could not be built
EXC_TAG = "GBG-SANDBOX-EXC"  # launcher's last stderr line when the program raised
SETUP_EXIT = 97
OUTPUT_TAIL = 8192  # bytes of stdout/stderr read back


class SandboxError(RuntimeError):
    """The sandbox itself can't run programs here (not something a program did)."""


@dataclass(frozen=True)
class ExecResult:
    passed: bool
    status: str  # "passed" | "failed" (an assertion failed or it ended early) | "timeout" | "error" (other exception, resource limit, or sandbox failure)
    detail: str = ""  # e.g. "AssertionError", "MemoryError", "timeout after 10 s", "exited early (code 0) without finishing"

    @property
    def sandbox_failed(self) -> bool:
        """True when the program never ran (jail setup or process start failed): don't record it as the program's score.
        A program can't fake this: the launcher reports "ready" on a pipe it closes before the program starts."""
        return self.status == "error" and self.detail.startswith("sandbox: ")


# --- the launcher: trusted code run as `python -I -c _LAUNCHER`, before the program ----------------
_LAUNCHER = r'''
import ctypes, json, os, resource, signal, sys, traceback
libc = ctypes.CDLL(None, use_errno=True)
plan = {}

def fail(what):
    os.write(2, ("\n%s: %s\n" % (plan["setup_tag"], what)).encode()); os._exit(plan["setup_exit"])

def ok(ret, what):
    if ret != 0:
        fail("%s: %s" % (what, os.strerror(ctypes.get_errno())))

def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():  # a function, so that the nonce is a local, not an attribute of `__main__`
    msg = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY); os.dup2(devnull, 0); os.close(devnull)
    plan_, nonce, code, test = msg["plan"], msg["nonce"], msg["code"], msg["test"]
    del msg
    plan.update(plan_)
    uid, gid = os.getuid(), os.getgid()
    flags = plan["unshare"]
    if flags:
        ok(libc.unshare(flags), "unshare")
        if flags & 0x10000000:  # user namespace: keep our own uid/gid, mapped to themselves
            write("/proc/self/setgroups", "deny"); write("/proc/self/uid_map", "%d %d 1" % (uid, uid)); write("/proc/self/gid_map", "%d %d 1" % (gid, gid))
    if flags & 0x20000000:  # new PID namespace: its first child is PID 1; we stay outside and only wait
        child = os.fork()
        if child:
            os.close(plan["ready_fd"])
            _, status = os.waitpid(child, 0)
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: if the supervisor is killed, PID 1 dies, and with it the namespace

    workdir = plan["workdir"]
    if plan["mount"]:
        MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18
        # Private first: nothing we mount below may propagate to the host's namespace.
        ok(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")
        # Whole tree read-only (mount_setattr, Linux >= 5.12). Required without a uid drop, where it is
        # the only thing protecting the user's files; with one, defence in depth.
        class MountAttr(ctypes.Structure):
            _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64), ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]
        attr = MountAttr(1, 0, 0, 0)  # MOUNT_ATTR_RDONLY
        nr = {"x86_64": 442, "aarch64": 442}.get(os.uname().machine)
        rdonly = nr and libc.syscall(nr, -100, b"/", 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)) == 0  # AT_FDCWD, AT_RECURSIVE
        if not rdonly and plan["uid"] is None:
            fail("cannot make the mount tree read-only (mount_setattr)")  # without a uid drop it is the only file protection
        size = ("size=%dm,mode=1777" % plan["disk_mb"]).encode()
        ok(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, size), "mount tmpfs on /tmp")
        for extra in (b"/var/tmp", b"/dev/shm", b"/run"):  # also hides host daemons' sockets under /run
            if os.path.isdir(extra):
                libc.mount(b"tmpfs", extra, b"tmpfs", MS_NOSUID | MS_NODEV, size)  # best effort
        # The interpreter may live where the sandbox uid cannot read (e.g. /root/.pyenv): bind those
        # sys.path entries under /tmp/.gbg-sys (root-owned, read-only) so later imports still work.
        if plan["uid"] is not None:
            def world_ok(p):  # readable by others, and every ancestor searchable by others
                d = os.path.realpath(p)
                try:
                    if os.stat(d).st_mode & 0o005 != 0o005:
                        return False
                    while d != "/":
                        d = os.path.dirname(d)
                        if not os.stat(d).st_mode & 0o001:
                            return False
                except OSError:
                    pass
                return True
            os.makedirs("/tmp/.gbg-sys", 0o755)
            new_path, moved = [], []
            for i, p in enumerate(sys.path):
                if p and os.path.isdir(p) and not world_ok(p):
                    dst = "/tmp/.gbg-sys/%d" % i
                    os.mkdir(dst, 0o755)
                    ok(libc.mount(p.encode(), dst.encode(), None, MS_BIND | MS_REC, None), "bind " + p)
                    moved.append((p, dst))
                    p = dst
                new_path.append(p)
            sys.path[:] = new_path
            sys.path_importer_cache.clear()
            # Packages already imported (encodings, collections, ...) find submodules through __path__.
            moved = [(os.path.realpath(a), b) for a, b in moved]
            for mod in list(sys.modules.values()):
                mp = getattr(mod, "__path__", None)
                if isinstance(mp, list):
                    for j, entry in enumerate(mp):
                        for a, b in moved:
                            if entry == a or entry.startswith(a + os.sep):
                                mp[j] = b + entry[len(a):]
        workdir = "/tmp/work"
        os.mkdir(workdir, 0o700)
        if plan["uid"] is not None:
            os.chown(workdir, plan["uid"], plan["uid"])

    if flags & 0x20000000:
        # PID 1 stays trusted and only reaps: the kernel drops default-action signals sent to a namespace's
        # init (RLIMIT_CPU's SIGXCPU, for one), so the program runs as PID 2. When PID 2 ends, PID 1 exits
        # and the kernel kills whatever the program left behind.
        prog = os.fork()
        if prog:
            os.close(plan["ready_fd"])
            while True:
                pid, status = os.wait()
                if pid == prog:
                    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        libc.prctl(1, signal.SIGKILL)

    for name, (soft, hard) in plan["rlimits"].items():
        which = getattr(resource, name)
        cur_hard = resource.getrlimit(which)[1]
        if cur_hard != resource.RLIM_INFINITY:  # a non-root process can't raise its hard limits
            hard, soft = min(hard, cur_hard), min(soft, cur_hard)
        resource.setrlimit(which, (soft, hard))
    os.chdir(workdir)
    os.environ["HOME"] = workdir
    if plan["uid"] is not None:  # root: become a uid nobody else uses (drops every capability)
        os.setgroups([]); os.setgid(plan["uid"]); os.setuid(plan["uid"])
        if os.getuid() == 0 or os.geteuid() == 0:
            fail("could not drop root")
        if flags & 0x20000000:
            libc.prctl(1, signal.SIGKILL)  # PDEATHSIG is cleared by the uid change: set it again
    elif flags & 0x10000000:  # user namespace: drop the namespace capabilities we were given
        class CapHeader(ctypes.Structure):
            _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]
        class CapData(ctypes.Structure):
            _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]
        ok(libc.capset(ctypes.byref(CapHeader(0x20080522, 0)), (CapData * 2)()), "capset")
    if sys.platform.startswith("linux"):
        ok(libc.prctl(38, 1, 0, 0, 0), "no_new_privs")  # PR_SET_NO_NEW_PRIVS: setuid binaries can't raise privileges
    sys.argv = ["<program>"]
    sys.stdout.flush()
    import builtins
    pristine = dict(builtins.__dict__)  # taken before the program runs: what the test's names will mean
    # Tell the parent the jail is up; closed before the program runs, so it can't un-say it (and any
    # failure from here on is the program's, however it dresses its output).
    os.write(plan["ready_fd"], b"ready"); os.close(plan["ready_fd"])
    try:
        ns = {"__name__": "__main__", "__builtins__": builtins}
        exec(compile(code, "<program>", "exec"), ns)
        if test is not None:
            # The test runs in its own namespace with the builtins as they were, so the program can't
            # redefine what `abs`, `len`, `isinstance`... mean to the test (its functions keep their own).
            tns = {k: v for k, v in ns.items() if k != "__builtins__"}
            tns.update(__name__="__test__", __builtins__=pristine)
            exec(compile(test, "<test>", "exec"), tns)
    except BaseException as e:
        try:
            traceback.print_exc(limit=-3)
        except BaseException:
            pass
        try:
            first = str(e).strip().splitlines()
            text = ("%s: %s" % (type(e).__name__, first[0] if first else "")).rstrip(": ")[:300]
        except BaseException:
            text = type(e).__name__
        sys.stderr.flush()
        os.write(2, ("\n%s %s\n" % (plan["exc_tag"], text)).encode())
        if isinstance(e, SystemExit):
            c = e.code
            os._exit(c if isinstance(c, int) and 0 <= c < 128 else (0 if c is None else 1))
        os._exit(1)
    try:
        sys.stdout.flush(); sys.stderr.flush()
    except BaseException:
        pass
    os.write(1, ("\n" + nonce + "\n").encode())
    os._exit(0)


main()
'''


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
            if _PLAN["name"] == "basic":
                warnings.warn("gbg sandbox: no namespaces or uid separation available here; untrusted code runs with "
                              "resource limits only and could touch this user's files and the network", RuntimeWarning, stacklevel=2)
        p = _PLAN
    return dict(name=p["name"], net=bool(p["unshare"] & CLONE_NEWNET), pid=bool(p["unshare"] & CLONE_NEWPID),
                files=bool(p["mount"] or p["uid"]), uid=p["uid"])


def _take_uid() -> int:
    with _UID_LOCK:
        uid = next(u for u in range(_UID_BASE, _UID_BASE + _UID_SLOTS) if u not in _uids_in_use)
        _uids_in_use.add(uid)
        return uid


def _give_uid(uid: int) -> None:
    with _UID_LOCK:
        _uids_in_use.discard(uid)


# --- running one program --------------------------------------------------------------------------
def run_program(code: str, timeout: float = 10, memory_mb: int = 1024, fsize_mb: int = 16, disk_mb: int = 64,
                nproc: int = 32, test: str | None = None) -> ExecResult:
    """Run `code` in a fresh jailed process; passed iff it runs to its last line (see the module doc).

    test: code run after `code` in a namespace of its own that sees `code`'s names but the builtins
    as they were before `code` ran (a completion can't patch `abs` or `len` for the benchmark's asserts).

    timeout: wall-clock seconds (CPU time is limited to the same); memory_mb: address space;
    fsize_mb: largest file it may write (stdout/stderr included); disk_mb: size of its private /tmp
    (namespaced jails); nproc: processes/threads of the sandbox uid (root and userns jails).
    """
    isolation()
    return _run(code, _PLAN, timeout=timeout, memory_mb=memory_mb, fsize_mb=fsize_mb, disk_mb=disk_mb, nproc=nproc, test=test)


def run_many(programs: Sequence[str | tuple[str, str]] | Iterable[str | tuple[str, str]], workers: int = 2, **kw) -> list[ExecResult]:
    """`run_program` over many programs (code, or (code, test) pairs), `workers` at a time; results in input order."""
    programs = list(programs)
    isolation()  # probe once, before the threads start

    def one(p):
        return run_program(p[0], test=p[1], **kw) if isinstance(p, tuple) else run_program(p, **kw)

    if workers <= 1 or len(programs) <= 1:
        return [one(p) for p in programs]
    ex = ThreadPoolExecutor(max_workers=workers)
    try:
        return list(ex.map(one, programs))
    finally:  # on Ctrl-C, don't start the queued programs
        ex.shutdown(wait=True, cancel_futures=True)


def _run(code: str, plan: dict, *, timeout: float, memory_mb: int, fsize_mb: int, disk_mb: int, nproc: int,
         test: str | None = None) -> ExecResult:
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
        msg = dict(code=code, test=test, nonce=nonce, plan=dict(unshare=plan["unshare"], mount=plan["mount"], uid=uid, workdir=workdir,
                                                      disk_mb=disk_mb, rlimits=limits, setup_tag=SETUP_FAILED,
                                                      setup_exit=SETUP_EXIT, exc_tag=EXC_TAG))
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "HOME": workdir, "TMPDIR": "/tmp",
               # one BLAS/OpenMP thread: thread pools count against RLIMIT_NPROC and reserve address space
               "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        ready_r, ready_w = os.pipe()
        msg["plan"]["ready_fd"] = ready_w
        with tempfile.TemporaryFile() as fin, tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
            fin.write(json.dumps(msg).encode()); fin.flush(); fin.seek(0)
            t0 = time.monotonic()
            try:
                proc = subprocess.Popen([sys.executable, "-I", "-c", _LAUNCHER], stdin=fin, stdout=fout, stderr=ferr,
                                        cwd=workdir, env=env, close_fds=True, pass_fds=(ready_w,), start_new_session=True)
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
            ready = os.read(ready_r, 16) == b"ready"
        except BlockingIOError:
            ready = False
        return _verdict(ready, rc, timed_out, out, err, nonce, timeout, elapsed)
    except Exception as e:  # the sandbox itself failed: never crash the scorer
        if proc is not None:
            _kill_all(proc, uid, plan)
        return ExecResult(False, "error", f"sandbox: {type(e).__name__}: {e}")
    finally:
        if ready_r is not None:
            os.close(ready_r)
        shutil.rmtree(workdir, onerror=_force_remove)
        if uid is not None:
            _give_uid(uid)


def _verdict(ready: bool, rc: int, timed_out: bool, out: bytes, err: bytes, nonce: str, timeout: float, elapsed: float) -> ExecResult:
    err_s = err.decode("utf-8", "replace")
    if not ready:  # the program never started: the sandbox's failure, not the program's
        why = err_s.split(SETUP_FAILED + ":", 1)[1].strip().splitlines()[0] if SETUP_FAILED + ":" in err_s else (
            "setup timed out" if timed_out else f"launcher ended (code {rc}) before the program started: {err_s.strip()[-200:]}")
        return ExecResult(False, "error", "sandbox: " + why)
    exc = None
    for line in reversed(err_s.splitlines()):
        if line.startswith(EXC_TAG + " "):
            exc = line[len(EXC_TAG) + 1:].strip()
            break
    if timed_out:
        return ExecResult(False, "timeout", f"timeout after {timeout:g} s")
    sig = -rc if rc < 0 else (rc - 128 if rc > 128 else 0)
    if sig:
        if sig in (signal.SIGXCPU, signal.SIGKILL) and elapsed >= 0.9 * timeout:
            return ExecResult(False, "timeout", f"timeout (CPU time limit {timeout:g} s)")
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        why = {"SIGXFSZ": "file size limit exceeded", "SIGXCPU": "CPU time limit", "SIGSEGV": "segmentation fault"}.get(name, "killed")
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
