"""``tract-hub eval RUN_DIR|CHECKPOINT|hf-hub:org/name [--data DATASET --data-root DIR]``: evaluate weights on a
validation set (top-1/top-5 or mAP), as timm's ``validate.py`` and torchvision's ``--test-only`` do.

Examples::

    tract-hub eval runs/cifar10_resnet18-tract                       # the run's best checkpoint, on its own data
    tract-hub eval runs/cifar10_resnet18-tract --checkpoint last --ema
    tract-hub eval hf-hub:me/resnet18-cifar10-tract --data-root ~/data
    tract-hub eval hf-hub:timm/resnet50.a1_in1k --data imagenet --data-root /data/imagenet
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..artifacts.run_dir import BEST, CHECKPOINTS
from .recipe_flags import absolute_path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a run's or a checkpoint's weights on a validation set (top-1/top-5 or mAP)",
        description=(
            "Evaluate weights on a validation set: a run directory of tract-hub train (its best or last "
            "checkpoint, trained or EMA weights, on the run's own data and transform) or a Hub-format checkpoint "
            "(a directory, hf-hub:org/name or org/name; on the data set its recipe records, or --data). Prints "
            "the metrics in % and, where the run or checkpoint recorded them for the same weights and data, the "
            "recorded ones beside them."
        ),
    )
    parser.add_argument("source", metavar="RUN_DIR|CHECKPOINT", help="a run directory or a Hub-format checkpoint")
    parser.add_argument("--data", metavar="DATASET", help="the data set (default: the one the run/checkpoint records)")
    parser.add_argument("--data-root", metavar="DIR", type=absolute_path, help="directory of the data sets")
    parser.add_argument("--split", metavar="NAME", help="image_folder/imagenet: the validation sub-directory")
    parser.add_argument("--checkpoint", choices=CHECKPOINTS, default=BEST, help="run directory: which one")
    parser.add_argument("--ema", action="store_true", help="run directory: the EMA weights (train.ema / --model-ema)")
    parser.add_argument("-b", "--batch-size", type=int, metavar="N", help="images per batch (default: the run's)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), help="autocast (default: the run's, or fp32)")
    parser.add_argument("-j", "--workers", type=int, default=0, metavar="N", help="data loader workers (default 0)")
    parser.add_argument("--device", default="auto", choices=("auto", "cuda", "cpu"), help="default: cuda if present")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="change a data key, the value read as YAML (e.g. --set data.max_val_samples=1000)",
    )
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON (as timm's --results-file)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..artifacts.files import json_text, write_text_atomic
    from ..errors import InvalidArgumentError
    from ..training.progress import format_scores, progress_wanted
    from ..training.validate import validate

    overrides = []
    if args.data_root:
        overrides.append(f"data.root={json.dumps(args.data_root)}")
    if args.split:
        overrides.append(f"data.val_split={json.dumps(args.split)}")
    if args.batch_size is not None and args.batch_size < 1:
        raise InvalidArgumentError(f"--batch-size {args.batch_size}: give a positive number of images")
    result = validate(
        args.source,
        dataset=args.data,
        overrides=[*overrides, *args.overrides],
        checkpoint=args.checkpoint,
        ema=args.ema,
        device=args.device,
        batch_size=args.batch_size,
        precision=args.precision,
        workers=args.workers,
        show_progress=progress_wanted(),
    )
    keys = list(result.task.eval_keys)
    print(f"{result.source}: {result.samples} validation images of {result.dataset}")
    print(f"  measured  {format_scores(result.metrics, keys)}")
    if result.recorded:
        print(f"  recorded  {format_scores(result.recorded, keys)}  (by the run that produced these weights)")
    if args.json:
        write_text_atomic(Path(args.json), json_text(result.to_json()))
        print(f"results: {args.json}")
    return 0
