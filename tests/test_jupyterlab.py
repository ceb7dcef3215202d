"""End to end, as a person would: JupyterLab serves notebooks/temperature.ipynb, headless Chromium opens it,
runs every cell on the project's .venv kernel ("python3") with the embedded test model, drags the live
temperature slider and reads the re-sampled answers off the page.

Chromium and its driver are Debian's (`chromium`, `chromium-driver`; scripts/test.sh installs them), driven with
Selenium (the `test` extra). Nothing is downloaded. The notebook itself is never touched: a copy in a temp
folder gets small parameter values (smollm2-135m, transformers, 2 GSM8K items, a temp store and output dir).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from conftest import REPO, TEST_MODEL, free_port

NOTEBOOK = REPO / "notebooks" / "temperature.ipynb"
GAP_NOTEBOOK = REPO / "notebooks" / "gap.ipynb"

SERVER_START_S = 180  # JupyterLab up and answering /api/status
PAGE_LOAD_S = 180  # the notebook open and its kernel idle
RUN_ALL_S = 720  # every cell run: the sweep generates and scores, then the slider appears (~270 s on a busy 2-core box)
RESAMPLE_S = 420  # one slider move: the first one loads the model (~130 s there)
# Set by tests/conftest.py or pytest for the test process only: a person's `jupyter lab` has none of them.
TEST_ONLY_ENV = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "VLLM_CPU_KVCACHE_SPACE")


def _log_tail(path: Path, n: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError as e:
        return f"(no log: {e})"


def _params_copy(dst: Path, values: dict, notebook: Path = NOTEBOOK) -> Path:
    """Copy the notebook to dst with new values in its parameters cell (annotations and comments kept)."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    (cell,) = [c for c in nb.cells if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])]
    todo, lines = dict(values), []
    for line in cell.source.splitlines():
        m = re.match(r"^(\w+)(\s*:\s*[^=]+?)?(\s*=\s*)(.*?)(\s+#.*)?$", line)
        if m and m.group(1) in todo:
            name, ann, eq, _, comment = m.groups()
            line = f"{name}{ann or ''}{eq}{todo.pop(name)!r}{comment or ''}"
        lines.append(line)
    assert not todo, f"not in the parameters cell of {notebook.name}: {sorted(todo)}"
    cell.source = "\n".join(lines)
    nbformat.write(nb, dst)
    return dst


def _kernel_argv(kernel_id: str) -> list[str] | None:
    """The command line of the kernel process the server started for kernel_id (its connection file names it)."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue
        if any(f"kernel-{kernel_id}.json" in a for a in argv):
            return [a for a in argv if a]
    return None


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit() and int(proc.name) != os.getpid():
            try:
                if text in (proc / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(proc.name))
            except OSError:
                pass
    return pids


# Small parameters for a notebook run in the page: the embedded test model on 2 GSM8K items, a temp store and output.
def _small(tmp_path) -> dict:
    return {
        "models": [TEST_MODEL],
        "benchmarks": ["gsm8k"],
        "limit": 2,
        "n_samples": 3,
        "max_new_tokens": 32,
        "backend": "transformers",
        "store": str(tmp_path / "store.sqlite"),
        "n_boot": 200,
        "output_dir": str(tmp_path / "out"),
    }


@pytest.fixture
def jupyterlab(tmp_path, smol_path):
    """JupyterLab serving a parameterized copy of the temperature notebook (`_jupyterlab`)."""
    yield from _jupyterlab(tmp_path, NOTEBOOK, {**_small(tmp_path), "temperatures": [0.0, 1.0], "slider_item": 0})


@pytest.fixture
def jupyterlab_gap(tmp_path, smol_path):
    """JupyterLab serving a parameterized copy of the gap notebook (`_jupyterlab`)."""
    yield from _jupyterlab(tmp_path, GAP_NOTEBOOK, _small(tmp_path))


def _jupyterlab(tmp_path, notebook: Path, values: dict):
    """JupyterLab on 127.0.0.1 serving a temp folder that holds a copy of `notebook` with `values` as its parameters.

    The server and its kernels get the environment a person's shell has (GBG_DATA_DIR included), less what
    conftest/pytest set for the test process; Jupyter's config, data, runtime and IPython folders point at
    temp dirs, so no personal settings or kernels leak in."""
    import httpx

    root, jdirs = tmp_path / "lab", tmp_path / "jupyter"
    root.mkdir()
    _params_copy(root / notebook.name, values, notebook)
    env = {k: v for k, v in os.environ.items() if k not in TEST_ONLY_ENV and not k.startswith("PYTEST_")}
    for var, sub in [
        ("JUPYTER_CONFIG_DIR", "config"),
        ("JUPYTER_DATA_DIR", "data"),
        ("JUPYTER_RUNTIME_DIR", "runtime"),
        ("IPYTHONDIR", "ipython"),
    ]:
        env[var] = str(jdirs / sub)
        (jdirs / sub).mkdir(parents=True)
    # A person answers "No" once to "Would you like to get notified about official Jupyter news?"; so do we,
    # or the toast covers the bottom right of the screenshots.
    prefs = jdirs / "config" / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    prefs.parent.mkdir(parents=True)
    prefs.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "jupyterlab.log"
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
    ]
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": f"token {token}"}
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env, cwd=root, start_new_session=True
        )
    lab = SimpleNamespace(
        notebook=notebook.name,
        url=url,
        token=token,
        headers=headers,
        root=root,
        log=log,
        proc=proc,
        python=sys.executable,
        tail=lambda: f"--- JupyterLab log ({log}), tail ---\n{_log_tail(log)}",
    )
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"JupyterLab exited with {proc.returncode} before answering\n{lab.tail()}")
            try:
                if httpx.get(f"{url}/api/status", headers=headers, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"JupyterLab did not answer on {url} within {SERVER_START_S} s\n{lab.tail()}")
            time.sleep(0.5)
        yield lab
    finally:
        _stop_jupyterlab(lab, jdirs / "runtime")


def _stop_jupyterlab(lab, runtime_dir: Path) -> None:
    import httpx

    proc = lab.proc
    if proc.poll() is None:
        try:  # the clean way: the server shuts its kernels down, then itself
            httpx.post(f"{lab.url}/api/shutdown", headers=lab.headers, timeout=10)
            proc.wait(30)
        except (httpx.HTTPError, subprocess.TimeoutExpired):
            pass
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is None:
            os.killpg(proc.pid, sig)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                pass
    # Kernels run in their own sessions; any left over is ours: its connection file is in our runtime dir.
    for pid in _pids_mentioning(str(runtime_dir)):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


@pytest.fixture
def browser(tmp_path):
    """Headless Debian Chromium under Debian's chromedriver (same version, nothing downloaded)."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if chromium is None or driver_bin is None:  # never a skip: `bash scripts/test.sh` installs both
        pytest.fail("no chromium / chromedriver: `bash scripts/test.sh` installs them (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1400,1100",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        f"--user-data-dir={tmp_path / 'chrome'}",
    ):
        opts.add_argument(arg)
    service = Service(executable_path=driver_bin, log_output=str(tmp_path / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=opts)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


# --- page helpers ---------------------------------------------------------------------------------


def _wait(what: str, timeout: float, check, lab, driver, shot: Path | None = None, every: float = 1.0):
    """Poll check() until it returns something truthy; on timeout fail with the page's state and the server log."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        if lab.proc.poll() is not None:
            pytest.fail(f"JupyterLab died ({lab.proc.returncode}) while waiting for {what}\n{lab.tail()}")
        if time.monotonic() > deadline:
            if shot:
                driver.save_screenshot(str(shot))
            pytest.fail(
                f"timed out after {timeout:.0f} s waiting for {what}"
                f"{f'; screenshot {shot}' if shot else ''}\n--- cell outputs ---\n{_outputs_text(driver)[-4000:]}\n"
                f"{lab.tail()}"
            )
        time.sleep(every)


def _outputs_text(driver) -> str:
    return (
        driver.execute_script(
            "return [...document.querySelectorAll('.jp-OutputArea-output')].map(e => e.innerText).join('\\n----\\n')"
        )
        or ""
    )


def _traceback(driver) -> str | None:
    text = _outputs_text(driver)
    return text if "Traceback (most recent call last)" in text else None


def _answers(driver) -> dict | None:
    """The explorer's output as the page shows it: its header and the rows of its answer table."""
    return driver.execute_script("""
        const out = [...document.querySelectorAll('.jp-OutputArea-output .widget-html-content')].pop();
        if (!out) return null;
        const rows = [...out.querySelectorAll('tr')].slice(1).map(tr => [...tr.querySelectorAll('td')].map(td => td.innerText));
        return {text: out.innerText, header: (out.querySelector('b') || {}).innerText || '', rows: rows};
    """)


def _readout(driver) -> str:
    return driver.execute_script(
        "const r = [...document.querySelectorAll('.jp-OutputArea-output .widget-readout')].pop(); return r ? r.innerText : '';"
    )


def _kernel_state(lab):
    import httpx

    try:
        sessions = httpx.get(f"{lab.url}/api/sessions", headers=lab.headers, timeout=10).json()
    except (httpx.HTTPError, ValueError):
        return None
    ours = [s for s in sessions if s.get("path", "").endswith(lab.notebook) and s.get("kernel")]
    return ours[0]["kernel"] if ours else None


def _drag_slider(driver, fraction: float) -> None:
    """Drag the slider's handle by `fraction` of the track's width (the real pointer events a person makes)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    slider = driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-slider")[-1]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", slider)
    track = slider.find_element(By.CSS_SELECTOR, ".noUi-target")
    handle = slider.find_element(By.CSS_SELECTOR, ".noUi-handle")
    width = track.size["width"]
    ActionChains(driver).move_to_element(handle).click_and_hold().pause(0.2).move_by_offset(int(width * fraction / 2), 0).pause(
        0.2
    ).move_by_offset(int(width * fraction / 2), 0).pause(0.2).release().perform()


def _shot(driver, path: Path) -> Path:
    """Screenshot with the "Live: drag the slider" heading, the explorer's cell, the slider and its answers in view."""
    driver.execute_script("""
        const s = [...document.querySelectorAll('.jp-OutputArea-output .widget-slider')].pop();
        const cell = s && s.closest('.jp-Cell');
        const above = cell && cell.previousElementSibling;
        (above && above.classList.contains('jp-MarkdownCell') ? above : cell || s).scrollIntoView({block: 'start'});""")
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    print(f"\n[test_jupyterlab] screenshot: {path}", flush=True)
    return path


def _open_and_run_all(lab, driver, tmp_path) -> None:
    """Open the lab's notebook as a person does, check that its kernel runs the project's interpreter, and click
    Run > Run All Cells in the menu bar."""
    from selenium.webdriver.common.by import By

    t0 = time.monotonic()
    driver.get(f"{lab.url}/lab/tree/{lab.notebook}?token={lab.token}")

    # The notebook opens and its kernelspec "python3" starts on the project's own interpreter.
    _wait(
        "the notebook to open",
        PAGE_LOAD_S,
        lambda: driver.find_elements(By.CSS_SELECTOR, ".jp-NotebookPanel .jp-Cell"),
        lab,
        driver,
        tmp_path / "fail_open.png",
    )
    kernel = _wait(
        "the python3 kernel to be idle",
        PAGE_LOAD_S,
        lambda: (k := _kernel_state(lab)) and k["execution_state"] == "idle" and k,
        lab,
        driver,
        tmp_path / "fail_kernel.png",
    )
    assert kernel["name"] == "python3", kernel
    argv = _wait("the kernel process", 30, lambda: _kernel_argv(kernel["id"]), lab, driver)
    assert argv[0] == lab.python, f"kernel runs {argv[0]!r}, not the .venv interpreter {lab.python!r}: {argv}"
    print(f"\n[test_jupyterlab] kernel python3 -> {' '.join(argv)}  (open in {time.monotonic() - t0:.0f} s)", flush=True)

    # Run > Run All Cells, from the menu bar.
    _wait(
        "the Run menu in the menu bar",
        30,
        lambda: [m for m in driver.find_elements(By.CSS_SELECTOR, ".lm-MenuBar-item") if m.text.strip() == "Run"],
        lab,
        driver,
        tmp_path / "fail_menu.png",
    )[0].click()
    _wait(
        "Run All Cells in the Run menu",
        30,
        lambda: [
            i for i in driver.find_elements(By.CSS_SELECTOR, ".lm-Menu .lm-Menu-item") if i.text.startswith("Run All Cells")
        ],
        lab,
        driver,
        tmp_path / "fail_menu.png",
    )[0].click()


@pytest.mark.slow
@pytest.mark.timeout(SERVER_START_S + PAGE_LOAD_S + RUN_ALL_S + 2 * RESAMPLE_S + 300)
def test_temperature_slider_in_jupyterlab(jupyterlab, browser, tmp_path):
    from selenium.webdriver.common.by import By

    lab, driver = jupyterlab, browser
    t0 = time.monotonic()
    _open_and_run_all(lab, driver, tmp_path)
    t_run = time.monotonic()

    def slider_or_error():
        if (tb := _traceback(driver)) is not None:
            driver.save_screenshot(str(tmp_path / "fail_run.png"))
            pytest.fail(f"a cell raised (screenshot {tmp_path / 'fail_run.png'}):\n{tb[-4000:]}\n{lab.tail()}")
        return driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-slider .noUi-handle")

    _wait("the temperature slider (all cells run)", RUN_ALL_S, slider_or_error, lab, driver, tmp_path / "fail_run.png", every=2)
    run_s = time.monotonic() - t_run
    before = _answers(driver)
    assert before and "Move the slider" in before["text"] and not before["rows"], before
    assert _readout(driver) == "1.00", _readout(driver)
    assert (tmp_path / "out" / "sweep.csv").is_file(), "the sweep was not saved to the temp output_dir"

    # Move 1: drag right, to about 1.5 => n_samples sampled answers at the slider's temperature.
    def resampled(expect_rows: int, not_header: str | None = None):
        def check():
            if (tb := _traceback(driver)) is not None:
                pytest.fail(f"re-sampling raised:\n{tb[-4000:]}\n{lab.tail()}")
            a, r = _answers(driver), _readout(driver)
            if a and a["header"] == f"T = {r}" and a["header"] != not_header and len(a["rows"]) == expect_rows:
                return a
            return None

        return check

    t_move = time.monotonic()
    _drag_slider(driver, 0.25)
    first = _wait("the answers after the first slider move", RESAMPLE_S, resampled(3), lab, driver, tmp_path / "fail_move1.png")
    move1_s = time.monotonic() - t_move
    t1 = float(first["header"].split("=")[1])
    assert 1.0 < t1 <= 2.0, first["header"]
    assert all(len(row) == 3 and row[0] in "✔✘" and row[2].strip() for row in first["rows"]), first["rows"]
    assert re.search(r"\d/3 correct, [123] distinct answers", first["text"]), first["text"]
    shot1 = _shot(driver, tmp_path / f"jupyterlab_temperature_T{t1:.2f}.png")

    # Move 2: drag all the way left, to 0 => greedy, one answer: the page re-sampled again.
    t_move = time.monotonic()
    _drag_slider(driver, -1.2)
    second = _wait(
        "the answers after the second slider move",
        RESAMPLE_S,
        resampled(1, first["header"]),
        lab,
        driver,
        tmp_path / "fail_move2.png",
    )
    move2_s = time.monotonic() - t_move
    assert second["header"] == "T = 0.00" and "1 distinct answers" in second["text"], second["text"]
    assert second["rows"] != first["rows"]
    shot2 = _shot(driver, tmp_path / "jupyterlab_temperature_T0.00.png")

    assert shot1.stat().st_size > 20_000 and shot2.stat().st_size > 20_000
    print(
        f"[test_jupyterlab] run all {run_s:.0f} s, move 1 (T={t1:.2f}, loads the model) {move1_s:.0f} s, "
        f"move 2 (T=0) {move2_s:.0f} s, total {time.monotonic() - t0:.0f} s\n"
        f"[test_jupyterlab] T={t1:.2f} answers: {[r[1] for r in first['rows']]}; greedy: {[r[1] for r in second['rows']]}",
        flush=True,
    )


def _explorer(driver) -> dict | None:
    """The item explorer's view as the page shows it: its item heading and each row's label and completion."""
    return driver.execute_script("""
        const out = [...document.querySelectorAll('.jp-OutputArea-output .widget-html-content')]
            .filter(e => e.querySelector('section h3')).pop();
        if (!out) return null;
        const rows = [...out.querySelectorAll('tr')].slice(1).map(tr => ({
            cls: tr.className, who: tr.cells[0].innerText, text: tr.querySelector('pre').innerText,
            bg: getComputedStyle(tr).backgroundColor}));
        return {heading: out.querySelector('h3').innerText, rows: rows};
    """)


def _page_rows(driver) -> list[dict]:
    """Every completion of a static items.html: its section's heading, its row's label, and the text shown."""
    return driver.execute_script("""
        return [...document.querySelectorAll('section')].flatMap(s => [...s.querySelectorAll('tr')].slice(1).map(tr => ({
            heading: s.querySelector('h3').innerText, who: tr.cells[0].innerText, text: tr.querySelector('pre').innerText})));
    """)


def _stored_text(frame, heading: str, who: str) -> str:
    """The store's text of the sample a row shows: "greedy", or "#j" of the sampled config, of the heading's item."""
    item = heading.split(" · item ", 1)[1].split(" · ", 1)[0]
    rows = frame[frame["item_id"] == item]
    rows = rows[rows["greedy"]] if who == "greedy" else rows[~rows["greedy"] & (rows["sample_idx"] == int(who.lstrip("#")))]
    (text,) = rows["text"].tolist()
    return text


@pytest.mark.slow
@pytest.mark.timeout(SERVER_START_S + PAGE_LOAD_S + RUN_ALL_S + 300)
def test_item_explorer_in_jupyterlab_and_items_page_show_the_stored_completions(jupyterlab_gap, browser, tmp_path):
    """The gap notebook run in JupyterLab: pick an item in its explorer and read its greedy and a sampled completion
    off the page; then open the run's items.html from disk: every completion it shows is the store's text."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from gbg_utils.store import SampleStore

    lab, driver = jupyterlab_gap, browser
    _open_and_run_all(lab, driver, tmp_path)

    def explorer_or_error():
        if (tb := _traceback(driver)) is not None:
            driver.save_screenshot(str(tmp_path / "fail_run.png"))
            pytest.fail(f"a cell raised (screenshot {tmp_path / 'fail_run.png'}):\n{tb[-4000:]}\n{lab.tail()}")
        return _explorer(driver)

    first = _wait(
        "the item explorer (all cells run)", RUN_ALL_S, explorer_or_error, lab, driver, tmp_path / "fail_run.png", every=2
    )
    frame = SampleStore(tmp_path / "store.sqlite", readonly=True).frame(model=TEST_MODEL, benchmark="gsm8k", text=True)
    # Pick the other item, as a person does: the explorer's "item" dropdown.
    (item_box,) = [
        d for d in driver.find_elements(By.CSS_SELECTOR, ".jp-OutputArea-output .widget-dropdown") if d.text.startswith("item")
    ]
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", item_box)
    Select(item_box.find_element(By.TAG_NAME, "select")).select_by_index(1)
    picked = _wait(
        "the explorer to show the picked item",
        60,
        lambda: (v := _explorer(driver)) and v["heading"] != first["heading"] and v,
        lab,
        driver,
        tmp_path / "fail_pick.png",
    )
    greedy = [r for r in picked["rows"] if r["cls"] == "greedy"]
    sampled = [r for r in picked["rows"] if r["who"].startswith("#")]
    assert len(greedy) == 1 and len(sampled) == 3, picked
    assert greedy[0]["text"] == _stored_text(frame, picked["heading"], "greedy")
    assert sampled[0]["text"] == _stored_text(frame, picked["heading"], sampled[0]["who"])
    # Highlighted on the page itself: greedy's row, and each answer that differs from greedy's.
    assert greedy[0]["bg"] == "rgb(231, 240, 255)"
    assert all(r["bg"] == "rgb(255, 243, 196)" for r in picked["rows"] if r["cls"] == "differs")
    driver.execute_script(
        "[...document.querySelectorAll('.jp-OutputArea-output .widget-html-content')]"
        ".filter(e => e.querySelector('section h3')).pop().scrollIntoView({block: 'start'});"
    )
    time.sleep(0.5)
    driver.save_screenshot(str(shot_lab := tmp_path / "jupyterlab_item_explorer.png"))

    page = tmp_path / "out" / "items.html"
    driver.get(page.as_uri())
    shown = _page_rows(driver)
    assert len(shown) == 2 * (1 + 3), shown  # both items: greedy and the 3 samples
    for r in shown:
        assert r["text"] == _stored_text(frame, r["heading"], r["who"]), r
    driver.save_screenshot(str(shot_page := tmp_path / "items_page.png"))
    assert shot_lab.stat().st_size > 20_000 and shot_page.stat().st_size > 20_000
    print(f"\n[test_jupyterlab] screenshots: {shot_lab}, {shot_page}", flush=True)
