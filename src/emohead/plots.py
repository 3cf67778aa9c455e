"""Bar charts for the evaluation report: per-emotion M-LMD and Table 1's grouped bars (PNG, atomic)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from emohead.atomic import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or under dvc
    import matplotlib.pyplot as plt

    return plt


def grouped_bars(
    path: Path,
    groups: Sequence[str],
    series: Mapping[str, Sequence[float | None]],
    title: str,
    ylabel: str,
    ax=None,
    legend: bool = True,
) -> None:
    """One bar per (group, series); a None value leaves a gap. Written to path unless ax is given."""
    plt = _pyplot()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(groups) * max(1, len(series))), 4.0))
    width = 0.8 / max(1, len(series))
    x = np.arange(len(groups))
    for i, (name, values) in enumerate(series.items()):
        heights = [np.nan if v is None else float(v) for v in values]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, groups, rotation=20)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if legend and len(series) > 1:
        ax.legend(fontsize="small", loc="best")
    if own:
        fig.tight_layout()
        _save(fig, path)


def per_emotion_bars(per_emotion: Mapping[str, Mapping[str, float | None]], path: Path) -> None:
    """M-LMD per emotion: on the rendered frames (dlib re-fit) and on stage 1's landmarks directly."""
    emotions = list(per_emotion)
    grouped_bars(
        path,
        emotions,
        {
            "rendered frames (dlib)": [per_emotion[e].get("m_lmd") for e in emotions],
            "stage 1 landmarks": [per_emotion[e].get("stage1_m_lmd") for e in emotions],
        },
        title="M-LMD per emotion on the test split (lower is better)",
        ylabel="M-LMD (px at the evaluation crop size)",
    )


def table1_bars(rows: Mapping[str, Mapping[str, Mapping[str, float | None]]], path: Path) -> None:
    """rows: {metric: {source ('ours'/'paper'): {row name: value}}} -> one panel per metric."""
    plt = _pyplot()
    metrics = list(rows)
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 4.3))
    for ax, metric in zip(np.atleast_1d(axes), metrics, strict=True):
        sources = rows[metric]
        names = list(next(iter(sources.values())))
        grouped_bars(path, names, {s: [v.get(n) for n in names] for s, v in sources.items()},
                     title=metric, ylabel=metric, ax=ax, legend=False)
    handles, labels = np.atleast_1d(axes)[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=len(labels), fontsize="small")
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    _save(fig, path)


def _save(fig, path: Path) -> None:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
