"""The sandbox: verdicts, and hostile programs that must fail while the host, the test runner and the
programs running beside them stay untouched."""

from __future__ import annotations

import ast
import json
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
from gbg_utils.score.scoring import score_store

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
        if sandbox.LAUNCHER.encode() in cmd or 0x5A000000 <= uid < 0x5F000000:
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


GOOD = "```python\ndef f(x):\n    return x\n```"


def _humaneval_store(tmp_path, completions: list[str]):
    """A real store holding `completions` of one small HumanEval-style item, and the humaneval task."""
    from gbg_utils.decoding import DecodingConfig
    from gbg_utils.store import Sample, SampleStore
    from gbg_utils.tasks import Item, get_task

    item = Item(
        "HumanEval/x",
        {
            "task_id": "HumanEval/x",
            "prompt": 'def f(x):\n    """Return x."""\n',
            "entry_point": "f",
            "canonical_solution": "    return x\n",
            "test": "def check(c):\n    assert c(1) == 1\n",
        },
    )
    store = SampleStore(tmp_path / "store.sqlite")
    run = store.new_run({"test": True})
    config = store.add_config(DecodingConfig(temperature=1.0, n=len(completions)), {"backend": "vllm", "weights": {"name": "m"}})
    store.add_samples([Sample("m", "humaneval", item.id, "p", config, j, t, 1) for j, t in enumerate(completions)], run)
    return store, get_task("humaneval"), item


# --- a program cannot pass for a broken sandbox (issue 21) ---------------------------------------
FORGERIES = {
    "exception_class_named_sandbox": "raise type('sandbox', (Exception,), {})('the jail is broken')",
    "exception_class_named_like_the_tag": "raise type('GBG-SANDBOX-SETUP-FAILED', (Exception,), {})('x')",
    "exc_tag_on_stderr": (
        "import os, sys\nsys.stderr.write('\\nGBG-SANDBOX-EXC sandbox: fake\\n'); sys.stderr.flush()\nos._exit(1)"
    ),
    "setup_tag_on_stderr_then_setup_exit": (
        "import os, sys\nsys.stderr.write('\\nGBG-SANDBOX-SETUP-FAILED: fake\\nGBG-SANDBOX-EXC sandbox: fake\\n')\n"
        "sys.stderr.flush()\nos._exit(97)"
    ),
    "closes_every_fd_then_dies": "import os\nos.closerange(0, 1024)\nos.kill(os.getpid(), 9)",
}


@pytest.mark.parametrize("name", list(FORGERIES))
def test_program_cannot_forge_a_sandbox_failure(name):
    r = run_program(FORGERIES[name], timeout=5)
    assert not r.passed and r.status in {"failed", "error"} and not r.sandbox_failed, r
    assert not r.detail.startswith("sandbox: "), r  # not even the scorers' old prefix test would fire


def test_a_forged_sandbox_failure_scores_zero_and_scoring_goes_on(tmp_path):
    """score_store records the forging completion as a 0 instead of raising SandboxError on every rerun."""

    forged = "```python\ndef f(x):\n    raise type('sandbox', (Exception,), {})('the jail is broken')\n```"
    good = "```python\ndef f(x):\n    return x\n```"
    store, task, item = _humaneval_store(tmp_path, [forged, good])
    assert score_store(store, task, items=[item], progress=False) == 2
    sc = store.scores(scorer=task.scorer).sort_values("sample_idx")
    assert list(sc["score"]) == [0.0, 1.0]


# --- what the jail lets a program read (issue 21) -------------------------------------------------
SECRET = "gbg-secret-" + uuid.uuid4().hex
NAMESPACED = ISO["name"].endswith("namespaces")


@pytest.fixture()
def secrets_at_home(monkeypatch):
    """A HOME, a store folder and an API key in the environment, as a user running gbg has them (outside /tmp,
    which every namespaced jail replaces anyway): a 0600 ~/.netrc, a 0644 ~/.config file, a 0644 store."""
    root = REPO / ".pytest_cache" / "gbg-home" / uuid.uuid4().hex
    home, store_dir = root / "home", root / "project" / "outputs"
    (home / ".config" / "gbg").mkdir(parents=True)
    store_dir.mkdir(parents=True)
    files = {
        "netrc": home / ".netrc",
        "config": home / ".config" / "gbg" / "keys.toml",
        "store": store_dir / "store.sqlite",
    }
    for f in files.values():
        f.write_text(SECRET)
    files["netrc"].chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GBG_TEST_API_KEY", SECRET)
    yield {**{k: str(v) for k, v in files.items()}, "home": str(home), "store_dir": str(store_dir)}
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _leak_program(paths: list[str]) -> str:
    """Tries every way to get the secret out (files, its environment, host processes' environments), and
    prints and raises whatever secret it found."""
    return (
        "import os, re\nfound = []\n"
        f"for p in {paths!r}:\n"
        "    try:\n        found.append(open(p).read())\n    except OSError:\n        pass\n"
        "found.append(repr(dict(os.environ)))\n"
        "for pid in os.listdir('/proc'):\n"
        "    try:\n        found.append(open(f'/proc/{pid}/environ').read())\n    except OSError:\n        pass\n"
        "hits = re.findall('gbg-secret-[0-9a-f]{32}', ' '.join(found))\n"
        "print(hits)\nraise Exception(' '.join(hits)[:250] or 'nothing found')\n"
    )


@pytest.mark.skipif(not NAMESPACED, reason=f"this host's jail ({ISO['name']}) has no mount namespace")
def test_jail_hides_home_store_and_keys(secrets_at_home, monkeypatch, capfd):
    from gbg_utils.sandbox import hidden

    paths = [secrets_at_home[k] for k in ("netrc", "config", "store")]
    with hidden(secrets_at_home["store_dir"], Path(secrets_at_home["config"]).parent):  # the second one inside the home
        r = run_program(_leak_program(paths), timeout=5)
    assert r.status == "error" and not r.sandbox_failed and r.detail == "Exception: nothing found", r
    assert SECRET not in capfd.readouterr().out
    # the home and the store folder are there, empty: nothing of the host's is listed either
    r = run_program(f"import os\nassert os.listdir({secrets_at_home['home']!r}) == []")
    assert r.passed, r


@pytest.mark.skipif(not ISO["pid"], reason=f"this host's jail ({ISO['name']}) has no PID namespace")
def test_jail_mounts_its_own_proc():
    """No host process is visible: not the test runner, not PID 1's command line."""
    me = os.getpid()
    code = (
        "import os\npids = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())\n"
        f"assert not os.path.exists('/proc/{me}') or {me} in pids[:3], pids\n"
        "assert len(pids) <= 3, pids\n"  # the reaper, the program, and at most one launcher left
        "assert b'launcher' in open('/proc/1/cmdline', 'rb').read() or open('/proc/1/cmdline', 'rb').read() == b''\n"
    )
    r = run_program(code, timeout=5)
    assert r.passed, r


NOBODY = 65534
SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")
_AS_USER = """
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("gbgsb", sys.argv[1], submodule_search_locations=[os.path.dirname(sys.argv[1])])
sb = importlib.util.module_from_spec(spec); sys.modules["gbgsb"] = sb; spec.loader.exec_module(sb)
iso = sb.isolation()
r = sb.run_program(sys.argv[2], timeout=5)
print(json.dumps({"iso": iso, "status": r.status, "detail": r.detail}))
"""


@pytest.mark.skipif(os.geteuid() != 0 or not SYSTEM_PYTHON, reason="needs root (to become another user) and /usr/bin/python3")
def test_unprivileged_users_jail_hides_their_home(tmp_path):
    """An ordinary user's jail (userns+namespaces): their own 0600 file is theirs by uid, so only the mounts protect it."""
    root = REPO / ".pytest_cache" / "gbg-nobody" / uuid.uuid4().hex
    home = root / "home"
    home.mkdir(parents=True)
    (home / ".netrc").write_text(SECRET)
    (home / ".netrc").chmod(0o600)
    home.chmod(0o700)
    os.chown(home, NOBODY, NOBODY)
    os.chown(home / ".netrc", NOBODY, NOBODY)
    try:
        env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "GBG_TEST_API_KEY": SECRET}
        out = subprocess.run(
            [SYSTEM_PYTHON, "-I", "-c", _AS_USER, str(Path(sandbox.__file__)), _leak_program([str(home / ".netrc")])],
            user=NOBODY,
            group=NOBODY,
            extra_groups=[],
            env=env,
            cwd="/",
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)
    if "GBG_SANDBOX_ALLOW_WEAK" in out.stderr:
        pytest.skip("no user namespaces for unprivileged users here: the weak jail is refused, as it should be")
    assert out.returncode == 0, out.stderr[-2000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    assert res["iso"]["name"] == "userns+namespaces", res
    assert res["status"] == "error" and res["detail"] == "Exception: nothing found", res


# --- weaker jails are refused unless asked for, and named beside the scores (issue 21) ------------
@pytest.fixture()
def weak_host(monkeypatch):
    """This host, as if it allowed no namespaces (root without CAP_SYS_ADMIN, or a user without user namespaces)."""
    weak = [p for p in sandbox._candidate_plans() if p["name"] in ("root+uid", "basic")]
    monkeypatch.setattr(sandbox, "_candidate_plans", lambda: weak)
    monkeypatch.setattr(sandbox, "_PLAN", None)
    monkeypatch.delenv("GBG_SANDBOX_ALLOW_WEAK", raising=False)
    yield isolation()["name"]  # the probe itself runs (a fixed, harmless program); reporting never refuses
    sandbox._PLAN = None  # the next test probes this host's real jail again


def test_a_weaker_jail_is_refused_by_default(weak_host):
    with pytest.raises(sandbox.SandboxError, match="GBG_SANDBOX_ALLOW_WEAK=1") as e:
        run_program("x = 1")
    assert "\n" not in str(e.value) and weak_host in str(e.value)
    with pytest.raises(sandbox.SandboxError, match="GBG_SANDBOX_ALLOW_WEAK"):
        run_many(["x = 1", "x = 2"])


def test_a_weaker_jail_runs_when_asked_for_and_is_recorded(weak_host, monkeypatch, tmp_path):

    monkeypatch.setenv("GBG_SANDBOX_ALLOW_WEAK", "1")
    assert run_program("x = 1").passed
    assert isolation()["name"] == weak_host
    store, task, item = _humaneval_store(tmp_path, [GOOD])
    assert score_store(store, task, items=[item], progress=False) == 1
    runs = [p for p in store.runs()["provenance"] if p.get("kind") == "score"]
    assert len(runs) == 1 and runs[0]["sandbox"]["name"] == weak_host, runs
    assert runs[0]["scorer"] == task.scorer and runs[0]["scorer_version"] == task.version and runs[0]["scored"] == 1


def test_the_namespace_jail_is_recorded_beside_scores(tmp_path):

    store, task, item = _humaneval_store(tmp_path, [GOOD])
    assert score_store(store, task, items=[item], progress=False) == 1
    runs = [p for p in store.runs()["provenance"] if p.get("kind") == "score"]
    assert [r["sandbox"]["name"] for r in runs] == [ISO["name"]]


@pytest.mark.skipif(not NAMESPACED, reason=f"this host's jail ({ISO['name']}) has no mount namespace")
def test_score_store_hides_the_stores_folder(tmp_path):
    """A completion scored from a store outside /tmp (as outputs/store.sqlite is) finds the store's folder empty."""
    root = REPO / ".pytest_cache" / "gbg-store" / uuid.uuid4().hex
    try:
        peek = "```python\ndef f(x):\n    import os\n    assert os.listdir({d!r}) == [], os.listdir({d!r})\n    return x\n```"
        store, task, item = _humaneval_store(root, [peek.format(d=str(root))])
        assert (root / "store.sqlite").exists()
        assert score_store(store, task, items=[item], progress=False) == 1
        sc = store.scores(scorer=task.scorer)
        assert list(sc["score"]) == [1.0], list(sc["reason"])
    finally:
        subprocess.run(["rm", "-rf", str(root)], check=False)
