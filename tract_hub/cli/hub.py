"""``tract-hub push``, ``tract-hub pull`` and ``tract-hub card``: publish runs, fetch checkpoints, render cards.

Examples::

    tract-hub push runs/cifar10_tract --repo me/resnet18-cifar10-tract --baseline runs/cifar10_vanilla --dry-run
    tract-hub pull hf-hub:me/resnet18-cifar10-tract --to checkpoints/resnet18-tract
    tract-hub card runs/cifar10_tract --baseline runs/cifar10_vanilla --output model_cards/resnet18/README.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``push``, ``pull`` and ``card`` subcommands."""
    push = subparsers.add_parser(
        "push",
        help="upload a run's best checkpoint (weights, timm config, model card, curves) to the Hugging Face Hub",
        description="Save RUN_DIR's best checkpoint in Hub format with its model card and upload it in one commit.",
    )
    push.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help="a run directory written by `tract-hub train` (or a checkpoint directory from save_pretrained)",
    )
    push.add_argument("--repo", required=True, metavar="ORG/NAME", help="the Hub repository (created if missing)")
    push.add_argument("--baseline", metavar="RUN_DIR", help="the vanilla run to compare with in the card")
    push.add_argument("--private", action="store_true", help="create the repository private")
    push.add_argument("--revision", metavar="BRANCH", help="commit to this branch (created if missing; default main)")
    push.add_argument("--commit-message", metavar="TEXT", help="the commit message")
    push.add_argument("--token", help="Hub token (default: HF_TOKEN or the token of `hf auth login`)")
    push.add_argument(
        "--dry-run", action="store_true", help="write the folder and print what would be uploaded; no upload"
    )
    push.add_argument("--folder", metavar="DIR", help="write the upload folder here (default: a temporary directory)")
    push.set_defaults(handler=_push)

    pull = subparsers.add_parser(
        "pull",
        help="download a checkpoint, verify that it loads, and copy it into a directory",
        description="Fetch SOURCE (hf-hub:org/name[@revision], org/name, or a directory), check its sha256, build "
        "it and load it strictly, then write config.json, model.safetensors and the card into --to.",
    )
    pull.add_argument(
        "source", metavar="SOURCE", help="hf-hub:org/name[@revision], org/name, or a checkpoint directory"
    )
    pull.add_argument("--to", required=True, metavar="DIR", help="the directory to write the checkpoint into")
    pull.add_argument("--revision", help="branch, tag or commit on the Hub")
    pull.add_argument("--overwrite", action="store_true", help="replace the checkpoint files of a non-empty --to")
    pull.add_argument("--token", help="Hub token for private repositories")
    pull.set_defaults(handler=_pull)

    card = subparsers.add_parser(
        "card",
        help="render the model card (README.md) of a run",
        description="Render RUN_DIR's model card: front matter, recipe, results (vs --baseline), curves, usage.",
    )
    card.add_argument("run_dir", metavar="RUN_DIR", help="a run directory written by `tract-hub train`")
    card.add_argument("--baseline", metavar="RUN_DIR", help="the vanilla run to compare with")
    card.add_argument("--repo", metavar="ORG/NAME", help="the Hub repository the usage snippets name")
    card.add_argument(
        "--output",
        metavar="FILE",
        help="write the card here and training_curves.png next to it (default: print the card)",
    )
    card.set_defaults(handler=_card)


def _push(args: argparse.Namespace) -> int:
    from ..hub import push_to_hub

    result = push_to_hub(
        args.run_dir,
        args.repo,
        private=args.private,
        revision=args.revision,
        commit_message=args.commit_message,
        token=args.token,
        dry_run=args.dry_run,
        baseline=args.baseline,
        folder=args.folder,
    )
    print(result.describe())
    if args.dry_run:
        print(f"the folder is kept at {result.folder}; run again without --dry-run to upload")
    return 0


def _pull(args: argparse.Namespace) -> int:
    from ..hub import pull

    target = pull(args.source, args.to, revision=args.revision, overwrite=args.overwrite, token=args.token)
    files = ", ".join(sorted(path.name for path in target.iterdir()))
    print(f"verified and wrote {args.source} to {target} ({files})")
    return 0


def _card(args: argparse.Namespace) -> int:
    from ..artifacts.checkpoint_files import CARD_NAME
    from ..hub import write_run_card

    if args.output:
        path = write_run_card(args.run_dir, args.output, baseline=args.baseline, repo_id=args.repo)
        print(f"wrote {path}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        path = write_run_card(args.run_dir, Path(scratch) / CARD_NAME, baseline=args.baseline, repo_id=args.repo)
        sys.stdout.write(path.read_text(encoding="utf-8"))
    return 0
