"""A store opened the way SQLite means it to be: checked read-only before anything is written, readers
read-only, faults (a held lock, a full disk, a file that is no store) as one-line errors, and every command
that writes ends with the WAL checkpointed, so `store.sqlite` alone holds every commit."""

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import schema_1_store

from gbg_utils.cli import main
from gbg_utils.store import Sample, SampleStore, StoreError, StoreSchemaError

ROOT = Path(__file__).resolve().parents[1]


def _samples(n, start=0, text="x"):
    return [Sample("m", "b", str(i), "p", "k", 0, text, 3, "stop") for i in range(start, start + n)]


def _filled(path, n=5):
    store = SampleStore(path)
    store.add_samples(_samples(n), store.new_run({}))
    return store


def _gbg(*args, cwd=ROOT):
    env = {**os.environ, "GBG_DATA_DIR": os.environ.get("GBG_DATA_DIR", "/work/shared/data")}
    env.pop("GBG_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "gbg_utils.cli", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


def _one_line_error(proc):
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("gbg: error: "), err
    return err


def _files(folder):
    return {p.name: p.read_bytes() for p in Path(folder).iterdir()}


# --- the schema is checked before anything is written ------------------------------------------------
def test_an_old_schema_store_is_refused_and_left_as_it_was(tmp_path):
    old = schema_1_store(tmp_path / "old.sqlite")
    before = _files(tmp_path)
    with pytest.raises(StoreSchemaError, match="schema 1.*start a new store"):
        SampleStore(old)
    assert _files(tmp_path) == before  # not switched to WAL mode, no meta row, no -wal file


def test_a_foreign_database_is_refused_and_left_as_it_was(tmp_path):
    other = tmp_path / "notes.sqlite"
    con = sqlite3.connect(other)
    con.executescript("CREATE TABLE notes (t TEXT); INSERT INTO notes VALUES ('mine');")
    con.close()
    before = _files(tmp_path)
    with pytest.raises(StoreError, match="not a gbg store.*tables notes"):
        SampleStore(other)
    assert _files(tmp_path) == before
    assert main(["score", "--benchmark", "humaneval", "--store", str(other)]) == 2
    assert _files(tmp_path) == before


def test_a_newer_schema_says_to_upgrade_gbg_not_to_start_over(tmp_path):
    path = tmp_path / "new.sqlite"
    _filled(path)
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET v='99' WHERE k='schema_version'")
    con.commit()
    con.close()
    with pytest.raises(StoreSchemaError) as e:
        SampleStore(path)
    assert "newer gbg" in str(e.value) and "upgrade gbg" in str(e.value) and "start a new store" not in str(e.value)
    with pytest.raises(StoreSchemaError, match="upgrade gbg"):
        SampleStore(path, readonly=True)


def test_score_on_a_missing_store_says_so_and_creates_nothing(tmp_path):
    typo = tmp_path / "typo.sqlite"
    proc = _gbg("score", "--benchmark", "humaneval", "--store", str(typo))
    assert proc.returncode == 2 and "no store at" in _one_line_error(proc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["--model=no-such-model", "--temperature=-1"])
def test_a_refused_generate_creates_no_store(tmp_path, bad):
    path = tmp_path / "new" / "s.sqlite"
    proc = _gbg("generate", bad, "--limit", "1", "--n-samples", "1", "--backend", "transformers", "--store", str(path))
    assert proc.returncode == 2, proc.stderr
    _one_line_error(proc)
    assert not path.exists()


@pytest.mark.parametrize("kind", ["text", "folder"])
def test_a_text_file_or_a_folder_as_store_is_a_one_line_error(tmp_path, kind):
    bad = tmp_path / "bad.sqlite"
    if kind == "text":
        bad.write_text("benchmark,score\nhumaneval,0.5\n" * 100)
    else:
        bad.mkdir()
    before = bad.read_bytes() if kind == "text" else None
    proc = _gbg("score", "--benchmark", "humaneval", "--store", str(bad))
    assert proc.returncode == 2
    assert str(bad) in _one_line_error(proc)
    if kind == "text":
        assert bad.read_bytes() == before
    with pytest.raises(StoreError):
        SampleStore(bad, readonly=True)


# --- readers open read-only -------------------------------------------------------------------------
READER = textwrap.dedent("""
    import sys
    from gbg_utils.store import SampleStore
    s = SampleStore(sys.argv[1], readonly=True)
    print(len(s.samples()), len(s.frame()), s.counts()["samples"])
""")


def test_a_read_only_store_can_be_read(tmp_path):
    """chmod 444 on the file and 555 on its folder (a shared folder); root ignores modes, so as root the
    folder is also bind-mounted read-only (a mount namespace of the reader's own)."""
    folder = tmp_path / "shared"
    folder.mkdir()
    path = folder / "store.sqlite"
    _filled(path, 7)
    os.chmod(path, 0o444)
    os.chmod(folder, 0o555)
    before = _files(folder)
    cmd = [sys.executable, "-c", READER, str(path)]
    if os.geteuid() == 0:
        ro = f'mount --bind {folder} {folder} && mount -o remount,ro,bind {folder} {folder} && exec "$@"'
        cmd = ["unshare", "-m", "sh", "-c", ro, "sh", *cmd]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.split() == ["7", "7", "7"]
        assert _files(folder) == before
    finally:
        os.chmod(folder, 0o755)


# --- faults: a held lock, a full disk -----------------------------------------------------------------
HOLDER = textwrap.dedent("""
    import sqlite3, sys
    con = sqlite3.connect(sys.argv[1], isolation_level=None)
    con.execute("BEGIN IMMEDIATE")
    print("held", flush=True)
    sys.stdin.readline()
    con.execute("COMMIT")
""")


def test_a_write_lock_held_past_the_wait_is_one_line_and_loses_no_commit(tmp_path, monkeypatch):
    path = tmp_path / "s.sqlite"
    store = _filled(path, 5)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        monkeypatch.setenv("GBG_STORE_BUSY_TIMEOUT", "0.5")
        waiting = SampleStore(path)  # the wait comes from the environment
        t0 = time.time()
        with pytest.raises(StoreError) as e:
            waiting.add_samples(_samples(3, start=5), waiting.new_run({}))
        assert time.time() - t0 < 10
        msg = str(e.value)
        assert "\n" not in msg and "locked" in msg and "GBG_STORE_BUSY_TIMEOUT" in msg
        assert f"pid {holder.pid}" in msg  # who holds it
        with pytest.raises(StoreError, match="after 0.2 s"):
            SampleStore(path, busy_timeout=0.2).add_samples(_samples(1, start=9), "r")
    finally:
        holder.communicate("\n", timeout=30)
    assert len(store.samples()) == 5  # the committed batch is whole
    assert store.add_samples(_samples(3, start=5), "r") == 3  # and the store works once the lock is gone


def test_a_full_disk_is_one_line_and_earlier_batches_are_whole(tmp_path):
    path = tmp_path / "s.sqlite"
    _filled(path, 5)
    con = sqlite3.connect(path)
    pages = con.execute("PRAGMA page_count").fetchone()[0]
    con.close()
    small = SampleStore(path, max_pages=pages + 2)  # SQLite's own knob: SQLITE_FULL past this size
    with pytest.raises(StoreError) as e:
        small.add_samples(_samples(200, start=5, text="y" * 2000), "r")
    msg = str(e.value)
    assert "\n" not in msg and "disk is full" in msg and "cannot rollback" not in msg
    assert len(SampleStore(path).samples()) == 5
    assert SampleStore(path).add_samples(_samples(200, start=5, text="y" * 2000), "r") == 200


# --- one file holds every commit ----------------------------------------------------------------------
def test_a_command_that_writes_leaves_every_commit_in_the_main_file(tmp_path):
    """A notebook keeps a connection open (so closing the last connection does not checkpoint): after
    `gbg store merge`, store.sqlite copied without its -wal file still holds the merged rows."""
    a = _filled(tmp_path / "a.sqlite", 6)
    out = tmp_path / "out.sqlite"
    SampleStore(out)
    notebook = sqlite3.connect(out)
    notebook.execute("SELECT count(*) FROM samples").fetchone()
    try:
        assert main(["store", "merge", str(out), str(a.path)]) == 0
        copy = tmp_path / "copy"
        copy.mkdir()
        shutil.copy(out, copy / "out.sqlite")  # the -wal file left behind
        assert len(SampleStore(copy / "out.sqlite", readonly=True).samples()) == 6
    finally:
        notebook.close()


def test_store_export_is_a_single_file_with_every_commit(tmp_path):
    store = _filled(tmp_path / "s.sqlite", 4)
    keep = sqlite3.connect(store.path)  # an open reader: the WAL stays
    keep.execute("SELECT 1").fetchone()
    try:
        store.add_samples(_samples(3, start=4), "r")
        dest = tmp_path / "exported" / "copy.sqlite"
        proc = _gbg("store", "export", str(store.path), str(dest))
        assert proc.returncode == 0, proc.stderr
        assert [p.name for p in dest.parent.iterdir()] == ["copy.sqlite"]
        moved = tmp_path / "moved.sqlite"
        shutil.copy(dest, moved)
        assert len(SampleStore(moved, readonly=True).samples()) == 7
        again = _gbg("store", "export", str(store.path), str(dest))
        assert again.returncode == 2 and "exists" in _one_line_error(again)
    finally:
        keep.close()


# --- rewards at the current reward version -------------------------------------------------------------
def test_add_rewards_reads_the_current_reward_version(tmp_path):
    from test_reward import _llama3_tokenizer, _save_rm

    from gbg_utils import study
    from gbg_utils.score.reward_models import REWARD_VERSION, load_reward_model
    from gbg_utils.store import KEY

    rm_dir = _save_rm(tmp_path / "tiny-rm", _llama3_tokenizer())
    scorer = load_reward_model(rm_dir).scorer
    store = SampleStore(tmp_path / "s.sqlite")
    rows = [Sample("m", "humaneval", "HumanEval/0", "p", "k", j, "t", 1) for j in range(3)]
    store.add_samples(rows, store.new_run({}))
    keys = [{k: getattr(s, k) for k in KEY} for s in rows]
    # scored at an older version and at the current one: the current one is read
    store.add_scores([{**k, "scorer": scorer, "scorer_version": "0", "score": -1.0} for k in keys])
    store.add_scores([{**k, "scorer": scorer, "scorer_version": REWARD_VERSION, "score": float(k["sample_idx"])} for k in keys])
    df = store.frame(benchmark="humaneval")
    P = SimpleNamespace(
        reward_models=[rm_dir],
        benchmarks=["humaneval"],
        protocol="paper",
        data_path=None,
        limit=None,
        subset_seed=0,
        store_path=store.path,
    )
    assert study.add_rewards(df, P) == [scorer]
    assert df[scorer].tolist() == [0.0, 1.0, 2.0]
