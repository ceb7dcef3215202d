"""The sandbox: verdicts, and hostile programs that must fail while the host, the test runner and the
programs running beside them stay untouched."""

from __future__ import annotations

import ast
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from gbg_utils import sandbox
from gbg_utils.sandbox import ExecResult, isolation, run_many, run_program

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
ISO = isolation()


# --- the launcher ------------------------------------------------------------------------------
def test_launcher_is_a_file_of_standard_library_imports_only():
    """The trusted launcher is a real file, run as a file, and imports nothing outside the standard library."""
    launcher = Path(sandbox.LAUNCHER)
    assert launcher.is_file() and launcher.parent == Path(sandbox.__file__).parent
    tops = set()
    for node in ast.walk(ast.parse(launcher.read_text(), str(launcher))):
        if isinstance(node, ast.Import):
            tops |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "the launcher has no package: no relative imports"
            tops.add(node.module.split(".")[0])
    assert tops and tops <= set(sys.stdlib_module_names), sorted(tops - set(sys.stdlib_module_names))


def test_launcher_runs_as_a_file(monkeypatch):
    real, argvs = subprocess.Popen, []
    monkeypatch.setattr(sandbox.subprocess, "Popen", lambda args, *a, **k: argvs.append(list(args)) or real(args, *a, **k))
    assert run_program("x = 1").passed
    assert argvs and all(a[1:] == ["-I", sandbox.LAUNCHER] for a in argvs)


# --- verdicts ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "code, status, detail",
    [
        ("x = 1", "passed", ""),
        ("assert sorted([3, 1, 2]) == [1, 2, 3]", "passed", ""),
        ("import math, fractions, statistics, hashlib\nassert math.isclose(statistics.mean([1, 2]), 1.5)", "passed", ""),
        ("assert 1 == 2", "failed", "AssertionError"),
        ("assert 1 == 2, 'one is not two'", "failed", "AssertionError: one is not two"),
        ("raise ValueError('boom')", "error", "ValueError: boom"),
        ("def f(:\n    pass", "error", "SyntaxError"),
        ("undefined_name", "error", "NameError"),
        ("import sys\nsys.exit(0)\nassert False", "failed", "SystemExit"),
        ("import sys\nsys.exit(3)", "failed", "SystemExit: 3"),
        ("import os\nos._exit(0)\nassert False", "failed", "exited early (code 0)"),
        ("import os\nos._exit(1)", "failed", "exited early (code 1)"),
        ("print('passed')\nprint('0' * 32)\nimport os\nos._exit(0)", "failed", "exited early"),
        (
            "import sys\nprint(repr(sys.stdin.read()))\nimport os\nos._exit(0)",
            "failed",
            "exited early",
        ),  # the nonce is gone from stdin
        ("import builtins\nbuiltins.AssertionError = type('Fake', (Exception,), {})\nassert 1 == 2", "failed", "AssertionError"),
        (
            "def check(candidate):\n    pass\n\ndef check(candidate):\n    assert candidate(2) == 5\n\ncheck(lambda x: x + 1)",
            "failed",
            "AssertionError",
        ),
    ],
)
def test_verdicts(code, status, detail):
    r = run_program(code, timeout=5)
    assert (r.status, r.passed) == (status, status == "passed"), r
    assert detail in r.detail


def test_run_many_keeps_order():
    progs = [f"assert {i} % 3 != 0" for i in range(9)]
    assert [r.passed for r in run_many(progs, workers=2)] == [i % 3 != 0 for i in range(9)]


def test_isolation_report():
    assert set(ISO) == {"name", "net", "pid", "files", "uid"}
    assert ISO["name"] in {"root+namespaces", "root+uid", "userns+namespaces", "basic"}
    can_unshare = (
        shutil.which("unshare")
        and subprocess.run(["unshare", "--net", "--pid", "--mount", "--fork", "true"], capture_output=True).returncode == 0
    )
    if os.geteuid() == 0 and can_unshare:
        # root where namespaces work (this repo's CI): the full jail, not silently a weaker one
        assert ISO["name"] == "root+namespaces", ISO


def test_sandbox_failure_is_a_result_not_an_exception(monkeypatch):
    monkeypatch.setattr(sandbox.subprocess, "Popen", lambda *a, **k: (_ for _ in ()).throw(OSError("no fork for you")))
    r = run_program("x = 1")
    assert (r.passed, r.status, r.sandbox_failed) == (False, "error", True) and "no fork for you" in r.detail


@pytest.mark.parametrize(
    "code",
    [
        "import os, sys\nsys.stderr.write('\\nGBG-SANDBOX-SETUP-FAILED: fake\\n'); sys.stderr.flush()\nos._exit(97)",
        "raise ValueError('sandbox: not really')",
    ],
)
def test_program_cannot_pass_for_a_sandbox_failure(code):
    r = run_program(code)
    assert not r.passed and not r.sandbox_failed, r


# --- hostile programs, run all together and beside ordinary ones ---------------------------------
# name: (code, acceptable statuses, what the host must offer for the case to be meaningful)
HOSTILE = {
    "infinite_loop": ("while True:\n    pass", {"timeout"}, None),
    "sleep_forever": ("import time\ntime.sleep(3600)", {"timeout"}, None),
    "fork_bomb": (
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        {"timeout", "error", "failed"},
        "procs",
    ),
    "orphan_daemon": (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(3600)\nassert False",
        {"failed"},
        "procs",
    ),
    "alloc_20gb": ("x = bytearray(20 * 1024 ** 3)", {"error"}, None),
    "alloc_growing": ("xs = []\nwhile True:\n    xs.append(bytearray(100 * 1024 ** 2))", {"error"}, None),
    "delete_host_file": ("import os\nos.remove({victim!r})", {"error"}, "files"),
    "rmtree_host_dir": ("import shutil\nshutil.rmtree({victim_dir!r})", {"error"}, "files"),
    "overwrite_host_file": ("open({victim!r}, 'w').write('pwned')", {"error"}, "files"),
    "chmod_host_file": ("import os\nos.chmod({victim!r}, 0)", {"error"}, "files"),
    "delete_tmp_file": ("import os\nos.remove({tmp_victim!r})", {"error"}, "files"),
    "socket_to_localhost": (
        "import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\ns.sendall(b'hello')",
        {"error"},
        "net",
    ),
    "huge_file": ("with open('big', 'wb') as f:\n    while True:\n        f.write(b'0' * (1 << 20))", {"error"}, None),
    "huge_stdout": ("import sys\nwhile True:\n    sys.stdout.write('x' * 65536)", {"error"}, None),
    "fill_disk": (
        "i = 0\nwhile True:\n    open(f'f{{i}}', 'wb').write(b'0' * (4 << 20))\n    i += 1",
        {"error", "timeout"},
        "mount",
    ),
    "kill_everything": ("import os, signal\nos.kill(-1, signal.SIGKILL)\nassert False", {"error", "failed"}, "procs"),
    "kill_parent": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\nassert False", {"error", "failed"}, "procs"),
    "become_root": ("import os\nos.setuid(0)", {"error"}, "uid"),
}


def _offers(need: str | None) -> bool:
    return {
        None: True,
        "files": ISO["files"],
        "net": ISO["net"],
        "uid": ISO["uid"],
        "mount": ISO["name"].endswith("namespaces"),
        "procs": ISO["uid"] or ISO["pid"],
    }[need]


@pytest.fixture(scope="module")
def victims(tmp_path_factory):
    """Host files the programs try to harm: one beside the repo (outside /tmp) and one under /tmp."""
    outside = REPO / ".pytest_cache" / "gbg-victims" / uuid.uuid4().hex
    outside.mkdir(parents=True)
    (outside / "precious.txt").write_text("precious")
    inside_tmp = tmp_path_factory.mktemp("victim") / "precious.txt"
    inside_tmp.write_text("precious")
    yield {"victim": str(outside / "precious.txt"), "victim_dir": str(outside), "tmp_victim": str(inside_tmp)}
    subprocess.run(["rm", "-rf", str(outside)], check=False)


@pytest.fixture(scope="module")
def server():
    """A TCP server on 127.0.0.1 counting the connections it accepts."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.1)
    seen, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
                seen.append(conn.recv(16))
                conn.close()
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield {"port": srv.getsockname()[1], "seen": seen}
    stop.set()
    t.join()
    srv.close()


def _sandbox_processes() -> list[str]:
    """Processes left over from sandboxes: launcher command lines, or uids from the sandbox range."""
    left = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{d}/cmdline").read_bytes()
            uid = os.stat(f"/proc/{d}").st_uid
        except OSError:
            continue
        if b"setup_tag" in cmd or 0x5A000000 <= uid < 0x5F000000:
            left.append(f"{d} uid={uid}")
    return left


@pytest.fixture(scope="module")
def hostile_run(victims, server):
    sentinel = subprocess.Popen(["sleep", "120"])  # a process of the test runner's own
    names = [n for n in HOSTILE if _offers(HOSTILE[n][2])]  # never run what this host can't contain (kill(-1) as root!)
    fmt = {**victims, "port": server["port"]}
    programs, normal_idx = [], []
    for name in names:  # an ordinary program between every two hostile ones
        programs.append(HOSTILE[name][0].format(**fmt))
        normal_idx.append(len(programs))
        programs.append("import math\nassert sum(range(10)) == 45 and math.factorial(5) == 120")
    t0 = time.monotonic()
    results = run_many(programs, workers=2, timeout=2, memory_mb=512, fsize_mb=8, disk_mb=32)
    elapsed = time.monotonic() - t0
    time.sleep(0.2)
    state = {"sentinel_alive": sentinel.poll() is None, "leftovers": _sandbox_processes(), "elapsed": elapsed}
    sentinel.kill()
    sentinel.wait()
    by_name = {n: results[2 * k] for k, n in enumerate(names)}
    return by_name, [results[i] for i in normal_idx], state


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_program_fails_safely(name, hostile_run, victims, server):
    code, statuses, need = HOSTILE[name]
    if not _offers(need):
        pytest.skip(f"this host's sandbox ({ISO['name']}) offers no '{need}' isolation")
    r: ExecResult = hostile_run[0][name]
    assert not r.passed and r.status in statuses, r
    # the host's files are untouched
    assert Path(victims["victim"]).read_text() == "precious"
    assert Path(victims["tmp_victim"]).read_text() == "precious"
    assert os.stat(victims["victim"]).st_mode & 0o777 != 0
    if name == "socket_to_localhost":
        assert server["seen"] == [], "a sandboxed program reached a host socket"


def test_ordinary_programs_beside_hostile_ones_pass(hostile_run):
    assert all(r.passed for r in hostile_run[1]), hostile_run[1]


def test_runner_and_its_processes_survive(hostile_run):
    state = hostile_run[2]
    assert state["sentinel_alive"], "a sandboxed program killed a process of the test runner"
    assert os.getpid() > 0  # we are still here
    if _offers("procs"):
        assert state["leftovers"] == [], f"sandbox processes survived: {state['leftovers']}"


def test_hostile_batch_is_fast(hostile_run):
    # 18 hostile (5 of them run into the 2 s limit) + 18 ordinary programs, 2 at a time
    assert hostile_run[2]["elapsed"] < 40, hostile_run[2]
