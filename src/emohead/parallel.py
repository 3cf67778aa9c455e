"""Per-clip work in parallel with a progress bar; a failing clip is recorded, not fatal."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tqdm import tqdm

from emohead.errors import EmoheadError, TooManyFailuresError

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Outcome(Generic[T, R]):
    item: T
    result: R | None
    error: str | None  # one line: why this item failed

    @property
    def ok(self) -> bool:
        return self.error is None


def _call(fn: Callable[[T], R], item: T) -> Outcome:
    try:
        return Outcome(item, fn(item), None)
    except EmoheadError as exc:
        return Outcome(item, None, str(exc))


def map_clips(
    fn: Callable[[T], R], items: Sequence[T], workers: int, desc: str
) -> list[Outcome[T, R]]:
    """Apply fn to every item (in worker processes when workers > 1), in input order.

    fn raises EmoheadError for an item it cannot handle; any other exception is a bug and propagates.
    """
    outcomes: list[Outcome | None] = [None] * len(items)
    bar = tqdm(total=len(items), desc=desc, unit="clip", leave=False)
    if workers <= 1 or len(items) <= 1:
        for i, item in enumerate(items):
            outcomes[i] = _call(fn, item)
            bar.update()
    else:
        # spawn, not fork: forking a process that already runs threads (torch, MLflow, a test's HTTP server)
        # can deadlock the children on locks held by threads that do not exist in them.
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = {pool.submit(_call, fn, item): i for i, item in enumerate(items)}
            for future in as_completed(futures):
                outcomes[futures[future]] = future.result()
                bar.update()
    bar.close()
    return outcomes  # type: ignore[return-value]


def check_failures(outcomes: Iterable[Outcome], max_share: float, what: str, name: Callable[[Any], str]) -> None:
    """Raise when more than max_share of the items failed; the message names the first few."""
    outcomes = list(outcomes)
    failed = [o for o in outcomes if not o.ok]
    if outcomes and len(failed) / len(outcomes) > max_share:
        examples = "; ".join(f"{name(o.item)}: {o.error}" for o in failed[:3])
        raise TooManyFailuresError(
            f"{len(failed)} of {len(outcomes)} {what} failed (tolerance {max_share:.0%}): {examples}"
        )
