"""Engine output goes to a log file, not into notebook cells or the terminal; progress bars stay.

vLLM, transformers and torch print INFO lines, warnings and C-level messages while a model loads and
generates. Inside ``engine_output()`` all of it -- their loggers, Python warnings, and anything written to
file descriptors 1 and 2 -- lands in ``engine_log_path()`` ($GBG_ENGINE_LOG, which ``gbg run`` points at the
run folder; else outputs/engine.log). Python-level writes to ``sys.stdout``/``sys.stderr`` (tqdm bars, gbg's
own messages) still reach the user.

    >>> with engine_output():
    ...     backend = load_backend("vllm", "smollm2-135m")
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings
from pathlib import Path

from .paths import OUTPUTS

ENGINE_LOGGERS = ("vllm", "transformers", "torch", "huggingface_hub", "accelerate", "datasets", "urllib3", "filelock")
_lock = threading.RLock()
_depth = 0


def engine_log_path() -> Path:
    return Path(os.environ.get("GBG_ENGINE_LOG") or OUTPUTS / "engine.log")


def quiet_env() -> None:
    """Settings read at import time: vLLM configures its own logger on import unless told not to."""
    os.environ.setdefault("VLLM_CONFIGURE_LOGGING", "0")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "warning")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _real_fd(stream) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


@contextlib.contextmanager
def engine_output(path: str | Path | None = None):
    """Route engine logs, warnings and fd-level output to the engine log for the duration (re-entrant)."""
    global _depth
    quiet_env()
    with _lock:
        _depth += 1
        if _depth > 1:  # already routed by an outer context
            try:
                yield engine_log_path()
            finally:
                _depth -= 1
            return
        log = Path(path) if path else engine_log_path()
        log.parent.mkdir(parents=True, exist_ok=True)
        fh = open(log, "a", buffering=1)
        handler = logging.StreamHandler(fh)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        saved_loggers = []
        for name in ENGINE_LOGGERS + ("py.warnings",):
            lg = logging.getLogger(name)
            saved_loggers.append((lg, lg.handlers[:], lg.propagate))
            lg.handlers = [handler]
            lg.propagate = False
        logging.captureWarnings(True)
        saved_filters = warnings.filters[:]
        warnings.simplefilter("default")  # each distinct warning once per location, into the log
        # fd 1/2: C++ and subprocess output. Where sys.stdout/err write to those fds (a terminal), give them
        # a copy of the original fd first so Python-level output (progress bars) still reaches the user.
        for s in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                s.flush()
        saved_fds = {fd: os.dup(fd) for fd in (1, 2)}
        swapped = {}
        for attr in ("stdout", "stderr"):
            stream = getattr(sys, attr)
            fd = _real_fd(stream)
            if fd in saved_fds:
                swapped[attr] = stream
                setattr(
                    sys,
                    attr,
                    os.fdopen(
                        os.dup(saved_fds[fd]),
                        "w",
                        buffering=1,
                        encoding=getattr(stream, "encoding", None) or "utf-8",
                        errors="replace",
                    ),
                )
        for fd in (1, 2):
            os.dup2(fh.fileno(), fd)
    try:
        yield log
    finally:
        with _lock:
            _depth -= 1
            for attr, stream in swapped.items():
                with contextlib.suppress(Exception):
                    getattr(sys, attr).flush()
                    getattr(sys, attr).close()
                setattr(sys, attr, stream)
            for fd, copy in saved_fds.items():
                os.dup2(copy, fd)
                os.close(copy)
            logging.captureWarnings(False)
            warnings.filters[:] = saved_filters
            for lg, handlers, propagate in saved_loggers:
                lg.handlers, lg.propagate = handlers, propagate
            handler.close()
            fh.close()
