"""The `emohead` command: `generate` a talking head from speech + a photo, and `table1` (the paper's ablation)."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from emohead.runner import guarded, setup_logging

log = logging.getLogger("emohead")


def _generate(args: argparse.Namespace) -> None:
    from emohead.generate import generate  # heavy imports only when the command runs

    result = generate(args.audio, args.image, args.out, models_dir=args.models, fps=args.fps,
                      crop_margin=args.crop_margin)
    print(
        f"wrote {result.path}: {result.n_frames} frames, {result.duration_s:.2f} s, "
        f"rendered at {result.frames_per_second:.1f} frames/s"
    )


def _table1(args: argparse.Namespace) -> None:
    from emohead.table1 import table1

    md, png = table1(run=not args.no_run, replace=args.replace, jobs=args.jobs, poll_s=args.poll_s, rev=args.rev,
                     reports=args.reports)
    print(f"wrote {md} and {png}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="emohead",
        description="Emotional talking-head generation (MSEF + AATU), reproduced as a DVC pipeline.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    gen = commands.add_parser(
        "generate",
        help="animate a face photo with a speech recording",
        description="Speech (any format ffmpeg reads) + a face photo -> an H.264/AAC mp4 at 25 fps, as long "
        "as the audio. Needs models/stage1.pt and models/stage2.pt (`dvc repro train_stage1 train_stage2`).",
    )
    gen.add_argument("--audio", type=Path, required=True, metavar="SPEECH", help="speech recording (wav, m4a, ...)")
    gen.add_argument("--image", type=Path, required=True, metavar="FACE", help="photo with a frontal face")
    gen.add_argument("--out", type=Path, required=True, metavar="OUT.mp4", help="video to write")
    gen.add_argument("--models", type=Path, default=Path("models"), metavar="DIR",
                     help="folder with stage1.pt and stage2.pt (default: ./models)")
    gen.add_argument("--fps", type=int, default=25,
                     help="frame rate; only 25 is supported (the models read 4 MFCC frames per video frame)")
    gen.add_argument("--crop-margin", type=float, default=0.25, metavar="SHARE",
                     help="face box growth per side, as features.crop_margin when the models were trained")
    gen.set_defaults(handler=_generate)

    tab = commands.add_parser(
        "table1",
        help="run the paper's Table 1 ablation as DVC experiments and write reports/table1.md",
        description="Queues Baseline, w/o MSEF, w/o AATU and Ours as DVC experiments (dvc exp run --queue), "
        "runs them with one queue worker (SQLite MLflow must not be written in parallel: for --jobs > 1 "
        "start `mlflow server` and set MLFLOW_TRACKING_URI), waits, then writes reports/table1.md and "
        "reports/table1.png beside the paper's numbers.",
    )
    tab.add_argument("--no-run", action="store_true", help="only collect finished experiments and write the report")
    tab.add_argument("--rev", metavar="COMMIT", default=None,
                     help="with --no-run: collect experiments queued on this commit (default: HEAD)")
    tab.add_argument("--replace", action="store_true", help="remove earlier table1-* experiments before queueing")
    tab.add_argument("--jobs", type=int, default=1,
                     help="queue workers (default 1; >1 needs an MLflow server, see above)")
    tab.add_argument("--poll-s", type=float, default=30.0, help="seconds between queue status checks")
    tab.add_argument("--reports", type=Path, default=Path("reports"), help="output folder (default: reports)")
    tab.set_defaults(handler=_table1)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    return guarded(args.command, lambda: args.handler(args))


if __name__ == "__main__":
    raise SystemExit(main())
