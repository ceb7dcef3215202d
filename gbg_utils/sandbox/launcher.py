"""The sandbox's trusted launcher, run as a file: `python -I launcher.py`, before the untrusted program.

It reads its plan, the nonce and the program from stdin (an unlinked temp file), builds the jail, then runs
the program. It tells the parent how the setup went on a pipe (`ready_fd`) that it closes before the program's
first line: "ready", or "fail:<why>". Nothing the program prints or raises can say either. Standard library only (tests/test_sandbox.py checks): it runs under `python -I`, before any
site-packages could be trusted, and it must not import gbg_utils.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import traceback

libc = ctypes.CDLL(None, use_errno=True)
plan = {}


def fail(what):
    try:
        os.write(plan["ready_fd"], ("fail:%s" % what).encode()[:1000])
    except (KeyError, OSError):  # no plan or pipe yet: the parent sees no "ready" and says so
        pass
    os._exit(plan["setup_exit"])


def ok(ret, what):
    if ret != 0:
        fail("%s: %s" % (what, os.strerror(ctypes.get_errno())))


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def main():  # a function, so that the nonce is a local, not an attribute of `__main__`
    msg = json.loads(sys.stdin.buffer.read())
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    plan_, nonce, code, test = msg["plan"], msg["nonce"], msg["code"], msg["test"]
    del msg
    plan.update(plan_)
    uid, gid = os.getuid(), os.getgid()
    flags = plan["unshare"]
    if flags:
        ok(libc.unshare(flags), "unshare")
        if flags & 0x10000000:  # user namespace: keep our own uid/gid, mapped to themselves
            write("/proc/self/setgroups", "deny")
            write("/proc/self/uid_map", "%d %d 1" % (uid, uid))
            write("/proc/self/gid_map", "%d %d 1" % (gid, gid))
    if flags & 0x20000000:  # new PID namespace: its first child is PID 1; we stay outside and only wait
        child = os.fork()
        if child:
            os.close(plan["ready_fd"])
            _, status = os.waitpid(child, 0)
            os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: if the supervisor is killed, PID 1 dies, and with it the namespace

    workdir = plan["workdir"]
    if plan["mount"]:
        MS_RDONLY, MS_NOSUID, MS_NODEV, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 4096, 16384, 1 << 18  # noqa: F841 - the full flag set, for reference
        # Private first: nothing we mount below may propagate to the host's namespace.
        ok(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "make / private")

        # Whole tree read-only (mount_setattr, Linux >= 5.12). Required without a uid drop, where it is
        # the only thing protecting the user's files; with one, defence in depth.
        class MountAttr(ctypes.Structure):
            _fields_ = [
                ("attr_set", ctypes.c_uint64),
                ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64),
                ("userns_fd", ctypes.c_uint64),
            ]

        attr = MountAttr(1, 0, 0, 0)  # MOUNT_ATTR_RDONLY
        nr = {"x86_64": 442, "aarch64": 442}.get(os.uname().machine)
        rdonly = (
            nr and libc.syscall(nr, -100, b"/", 0x8000, ctypes.byref(attr), ctypes.sizeof(attr)) == 0
        )  # AT_FDCWD, AT_RECURSIVE
        if not rdonly and plan["uid"] is None:
            fail("cannot make the mount tree read-only (mount_setattr)")  # without a uid drop it is the only file protection
        MS_NOEXEC = 8
        # Our own procfs (we are PID 1 of a new PID namespace): no host process, command line or environment.
        # Where the kernel refuses a procfs (a user namespace under a masked /proc), an empty /proc instead.
        own_pid_ns = flags & 0x20000000
        if not own_pid_ns or libc.mount(b"proc", b"/proc", b"proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
            ok(libc.mount(b"tmpfs", b"/proc", b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k,mode=555"), "hide /proc")
        size = ("size=%dm,mode=1777" % plan["disk_mb"]).encode()
        ok(libc.mount(b"tmpfs", b"/tmp", b"tmpfs", MS_NOSUID | MS_NODEV, size), "mount tmpfs on /tmp")
        for extra in (b"/var/tmp", b"/dev/shm", b"/run"):  # also hides host daemons' sockets under /run
            if os.path.isdir(extra):
                libc.mount(b"tmpfs", extra, b"tmpfs", MS_NOSUID | MS_NODEV, size)  # best effort
        hide = [h for h in plan["hide"] if os.path.isdir(h)]  # those under /tmp are gone already

        def under(p, folders):
            d = os.path.realpath(p)
            return any(d == h or d.startswith(h.rstrip("/") + "/") for h in folders)

        # The interpreter may live where the sandbox uid cannot read (e.g. /root/.pyenv) or in a folder about
        # to be hidden (the user's home): bind those sys.path entries under /tmp/.gbg-sys (read-only) so later
        # imports still work.
        def world_ok(p):  # readable by others, and every ancestor searchable by others
            if plan["uid"] is None:
                return True  # our own uid: what we can read now, the program can
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
            if p and os.path.isdir(p) and (not world_ok(p) or under(p, hide)):
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
                            mp[j] = b + entry[len(a) :]
        # Homes, credentials, the store: an empty read-only folder in their place. A mask that fails stops the
        # run (the parent sees "fail:"), never runs the program unmasked.
        masked = []
        for h in sorted(hide, key=len):
            if under(h, masked):
                continue  # inside a folder already masked: gone with it
            masked.append(h)
            ok(libc.mount(b"tmpfs", h.encode(), b"tmpfs", MS_RDONLY | MS_NOSUID | MS_NODEV, b"size=4k,mode=755"), "hide " + h)
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
        os.setgroups([])
        os.setgid(plan["uid"])
        os.setuid(plan["uid"])
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
    os.write(plan["ready_fd"], b"ready")
    os.close(plan["ready_fd"])
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
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:
        pass
    os.write(1, ("\n" + nonce + "\n").encode())
    os._exit(0)


main()
