"""``tract-hub train``'s ordinary flags (``--model``, ``--data``, ``--epochs``, ``--lr``, ...): each one sets one
recipe key, so ``tract-hub train --model timm:resnet50 --data image_folder --data-root DIR --img-size 224
--epochs 10`` and a YAML recipe with those keys give the same validated recipe, saved next to the run as
``recipe.yaml``. The names follow timm's ``train.py`` (and torchvision's references where timm has none).

Values go into the recipe's data as typed values (never re-read as YAML), then the recipe is validated by
:func:`tract_hub.training.recipe.recipe_from_data`, the same path a YAML file takes.

Example:
    >>> import argparse
    >>> parser = argparse.ArgumentParser()
    >>> add_recipe_flags(parser)
    >>> args = parser.parse_args(["--model", "timm:resnet18", "--data", "cifar10", "--epochs", "3", "--lam", "none"])
    >>> data = recipe_data(args, base=None)
    >>> data["model"], data["train"]["epochs"], data["lam"], data["name"]
    ({'architecture': 'timm:resnet18'}, 3, None, 'resnet18-cifar10')
"""

from __future__ import annotations

import argparse
import copy
import re
from pathlib import Path
from typing import Any

from ..artifacts.datasets import dataset_names

#: Batch size of a recipe made from flags alone, when --batch-size is not given (timm's default).
DEFAULT_BATCH_SIZE = 128


def lam_value(text: str) -> float | None:
    """``--lam``: a number, or ``none`` / ``null`` / ``vanilla`` for the vanilla run."""
    if text.strip().lower() in ("none", "null", "vanilla"):
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number (or 'none' for the vanilla run)") from None


def absolute_path(text: str) -> str:
    """A directory given on the command line, stored absolute (the run can be resumed from anywhere)."""
    return str(Path(text).expanduser().resolve())


#: (flags, recipe key, argparse options). A flag left out leaves the key as the recipe (or the default) has it.
FLAGS: list[tuple[tuple[str, ...], str, dict[str, Any]]] = [
    (("--name",), "name", {"help": "recipe name (default: <model>-<data>; names the run directory)"}),
    (("--model",), "model.architecture", {"metavar": "ARCH", "help": "timm:<name>, torchvision:<builder> or a name"}),
    (("--init",), "model.init", {"metavar": "SOURCE", "help": "fine-tune a checkpoint: hf-hub:org/name, dir, run"}),
    (("--pretrained",), "model.pretrained", {"action": "store_const", "const": True, "help": "architecture's weights"}),
    (
        ("--data",),
        "data.dataset",
        {"metavar": "DATASET", "help": ", ".join(dataset_names())},
    ),
    (
        ("--data-root",),
        "data.root",
        {"metavar": "DIR", "type": absolute_path, "help": "data directory (stored absolute)"},
    ),
    (("--train-split",), "data.train_split", {"help": "image_folder/imagenet: training sub-directory (default train)"}),
    (("--val-split",), "data.val_split", {"help": "image_folder/imagenet: validation sub-directory (default val)"}),
    (("--img-size", "--image-size"), "data.image_size", {"type": int, "metavar": "N", "help": "training resolution"}),
    (("--augment",), "data.augment", {"help": "none, cifar, cifar_rotate15, imagenet, deit3, finetune"}),
    (("--epochs",), "train.epochs", {"type": int, "metavar": "N", "help": "epochs to train"}),
    (
        ("-b", "--batch-size"),
        "train.batch_size",
        {
            "type": int,
            "metavar": "N",
            "help": f"images per optimizer step in total, all GPUs and micro-batches (default {DEFAULT_BATCH_SIZE} "
            "without a RECIPE)",
        },
    ),
    (("--accum-steps",), "train.accum_steps", {"type": int, "metavar": "K", "help": "micro-batches per step"}),
    (("--precision",), "train.precision", {"choices": ("fp32", "bf16", "fp16"), "help": "autocast precision"}),
    (("--seed",), "train.seed", {"type": int}),
    (("-j", "--workers"), "train.workers", {"type": int, "metavar": "N", "help": "data loader workers per process"}),
    (("--smoothing", "--label-smoothing"), "train.label_smoothing", {"type": float, "metavar": "EPS"}),
    (("--mixup",), "train.mixup", {"type": float, "metavar": "ALPHA", "help": "mixup alpha (0: off)"}),
    (("--cutmix",), "train.cutmix", {"type": float, "metavar": "ALPHA", "help": "cutmix alpha (0: off)"}),
    (("--clip-grad", "--grad-clip"), "train.grad_clip", {"type": float, "metavar": "NORM", "help": "max grad norm"}),
    (("--opt",), "optimizer.name", {"choices": ("sgd", "adam", "adamw", "lamb"), "help": "optimizer"}),
    (("--lr",), "optimizer.lr", {"type": float, "help": "peak learning rate"}),
    (("--momentum",), "optimizer.momentum", {"type": float}),
    (("--wd", "--weight-decay"), "optimizer.weight_decay", {"type": float, "metavar": "WD"}),
    (("--sched",), "schedule.name", {"choices": ("cosine", "multistep", "constant"), "help": "lr schedule"}),
    (("--warmup-epochs",), "schedule.warmup_epochs", {"type": float, "metavar": "E", "help": "linear lr warm-up"}),
    (("--lam",), "lam", {"type": lam_value, "metavar": "LAM", "help": "TrAct's lambda; 'none' for the vanilla run"}),
    (("--target",), "target", {"metavar": "LAYER", "help": "first layer to patch (default: located by the registry)"}),
    (("--model-ema",), "train.ema", {"action": "store_const", "const": {}, "help": "keep an EMA of the weights"}),
    (
        ("--model-ema-decay",),
        "train.ema.decay",
        {"type": float, "metavar": "D", "help": "EMA decay per step (default 0.9998; implies --model-ema)"},
    ),
    (
        ("--model-ema-warmup",),
        "train.ema.warmup",
        {"action": "store_const", "const": True, "help": "timm's EMA decay warm-up (implies --model-ema)"},
    ),
]

#: recipe key -> the flag that sets it (for error messages).
FLAG_OF = {key: next(flag for flag in flags if flag.startswith("--")) for flags, key, _ in FLAGS}


def _dest(flags: tuple[str, ...]) -> str:
    return "recipe_" + flags[-1].lstrip("-").replace("-", "_")


def add_recipe_flags(parser: argparse.ArgumentParser) -> None:
    """Add the recipe flags (in their own help group) to ``parser``."""
    group = parser.add_argument_group(
        "recipe flags", "each sets one recipe key (over the RECIPE file's value, before --set); see --dry-run"
    )
    for flags, key, options in FLAGS:
        help_text = options.get("help", "")
        if "metavar" not in options and "choices" not in options and "action" not in options:
            options = {**options, "metavar": flags[-1].lstrip("-").upper().replace("-", "_")}
        # SUPPRESS: a flag that is not given leaves no attribute, so "--lam none" (None) still counts as given
        group.add_argument(
            *flags,
            dest=_dest(flags),
            default=argparse.SUPPRESS,
            **{**options, "help": f"{help_text} [{key}]".lstrip()},
        )


def given_flags(args: argparse.Namespace) -> dict[str, Any]:
    """recipe key -> value for every recipe flag on the command line."""
    return {key: getattr(args, _dest(flags)) for flags, key, _ in FLAGS if hasattr(args, _dest(flags))}


def default_name(architecture: str | None, dataset: str | None) -> str:
    """``"resnet50-image_folder"`` from ``"timm:resnet50"`` and ``"image_folder"`` (a valid recipe name)."""
    model = (architecture or "model").split(":")[-1].split("/")[-1]
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "_", f"{model}-{dataset or 'data'}").strip("_.+-")
    return name or "run"


def recipe_data(args: argparse.Namespace, base: dict[str, Any] | None) -> dict[str, Any]:
    """The recipe's plain data: ``base`` (a parsed YAML file, or None for flags alone) with the flags set."""
    from ..artifacts.schema import set_path

    flags = given_flags(args)
    data: dict[str, Any] = {} if base is None else base
    if base is None:
        data["name"] = default_name(
            flags.get("model.architecture") or flags.get("model.init"), flags.get("data.dataset")
        )
        data["train"] = {"batch_size": DEFAULT_BATCH_SIZE}
    for key, value in flags.items():
        if key == "train.ema" and isinstance(data.get("train", {}).get("ema"), dict):
            continue  # --model-ema on a recipe that already keeps an EMA changes nothing
        set_path(data, key, copy.deepcopy(value))  # never the flag's shared constant ({} of --model-ema)
    return data


def missing_for_flags_only(args: argparse.Namespace) -> list[str]:
    """The flags a recipe made from flags alone cannot do without."""
    flags = given_flags(args)
    missing = []
    if "model.architecture" not in flags and "model.init" not in flags:
        missing.append("--model (or --init)")
    if "data.dataset" not in flags:
        missing.append("--data")
    if "train.epochs" not in flags:
        missing.append("--epochs")
    return missing


def flag_hint(message: str) -> str:
    """The flags that set the recipe keys a message names (``" (--img-size sets data.image_size)"``), or ``""``."""
    hints = [
        f"{flag} sets {key}"
        for key, flag in FLAG_OF.items()
        if re.search(rf"(?<![\w.]){re.escape(key)}(?![\w]|\.\w)", message)
    ]
    return f" ({'; '.join(hints)})" if hints else ""
