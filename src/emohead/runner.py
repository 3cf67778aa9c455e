"""Entry-point plumbing shared by every DVC stage script and the CLI: one-line errors, exit codes."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from emohead.config import read_params
from emohead.errors import EmoheadError

T = TypeVar("T")

log = logging.getLogger("emohead")


def setup_logging() -> None:
    logging.basicConfig(
        level=os.environ.get("EMOHEAD_LOG_LEVEL", "INFO"),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # MLflow and alembic are chatty on every SQLite open.
    for noisy in ("alembic", "mlflow", "urllib3", "numba", "matplotlib", "PIL"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def guarded(name: str, body: Callable[[], Any]) -> int:
    """Run `body`; an EmoheadError becomes one line on stderr and exit status 2."""
    try:
        body()
    except EmoheadError as exc:
        print(f"emohead {name}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"emohead {name}: interrupted; outputs were not written", file=sys.stderr)
        return 130
    return 0


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_stage(name: str, load_config: Callable[[dict], T], run: Callable[[T], Any]) -> None:
    """What every stages/<name>.py calls: parse params.yaml into the stage config, run, exit."""
    setup_logging()
    # SIGTERM (dvc queue kill, CI timeouts) unwinds like Ctrl-C so temp outputs are cleaned up.
    signal.signal(signal.SIGTERM, _interrupt)

    def body() -> None:
        config = load_config(read_params("params.yaml"))
        run(config)

    sys.exit(guarded(name, body))
