"""Transfer, the whole path: pretrain on Fashion-MNIST with and without TrAct, publish each as a Hub folder, load
each back (with tract_hub and with plain timm), fine-tune on digits, and compare with training from scratch.

1. Pretrain ``recipes/fashion_mnist_vit.yaml`` (``--recipe``) twice with the product's trainer, vanilla and
   TrAct (lam 0.1), seed 0, on the first ``--train-samples`` training images for ``--epochs`` epochs (the
   benchmark's budget, ``benchmarks/fashion_mnist.py``).
2. Publish each run as a user would: ``tract-hub push RUN --repo ORG/NAME --dry-run --folder DIR`` (the TrAct
   run's card compares with the vanilla run, ``--baseline``). Every published file is searched for the work
   folder, the data root, the home directory and the host name: none may appear. The two cards and configs are
   copied to ``benchmarks/results/fashion_mnist_transfer/``.
3. Load each folder back with ``tract_hub.from_pretrained(DIR)`` and with plain timm,
   ``timm.create_model("local-dir:DIR", pretrained=True)`` in a separate Python process that never imports
   tract_hub, preparing the 10,000 test images with timm's own transform from the folder's ``config.json``
   (``timm.data.resolve_data_config`` + ``create_transform``); the two models' logits must agree, and plain
   timm's test accuracy is reported beside the one the trainer recorded.
4. Fine-tune ``recipes/digits_finetune_fashion_mnist_vit.yaml`` (digits at 28x28, vanilla fine-tuning, a new
   classifier) from each folder, and the same recipe from scratch, for each of ``--seeds``.

Results: ``benchmarks/results/fashion_mnist_transfer.jsonl`` (one line per arm, seed and epoch of the
fine-tuning, ``top1`` in percent) and ``fashion_mnist_transfer.md``. Its pretraining is two of the benchmark's
ViT runs (about 340 CPU-seconds each); the whole script took 40 minutes on this 2-core machine while other work
shared it. Run:

    nice .venv/bin/python benchmarks/fashion_mnist_transfer.py
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"
RECIPES = Path(__file__).resolve().parents[1] / "recipes"
FINE_TUNE = "digits_finetune_fashion_mnist_vit"
PRETRAINED_ARMS = ("tract", "vanilla")
ARMS = ("tract-pretrained", "vanilla-pretrained", "scratch")


def _init_worker(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    logging.basicConfig(level=logging.WARNING)


def pretrain(job: dict[str, Any]) -> str:
    """One pretraining run into ``job["run_dir"]``."""
    from tract_hub.training import load_recipe, train

    overrides = [
        f"lam={'null' if job['arm'] == 'vanilla' else job['lam']}",
        "train.seed=0",
        f"train.epochs={job['epochs']}",
        f"data.max_train_samples={job['train_samples']}",
    ]
    if job["data_root"]:
        overrides.append(f"data.root={json.dumps(job['data_root'])}")
    train(load_recipe(RECIPES / f"{job['recipe']}.yaml", overrides), job["run_dir"], device="cpu", show_progress=False)
    return job["run_dir"]


def fine_tune(job: dict[str, Any]) -> list[dict[str, Any]]:
    """One fine-tuning run (from a published folder, or from scratch); one line per epoch."""
    from tract_hub.artifacts import RunDirectory
    from tract_hub.training import load_recipe, train

    overrides = [f"train.seed={job['seed']}"] + ([f"train.epochs={job['epochs']}"] if job["epochs"] else [])
    if job["init"] is None:
        overrides += ["model.init=null", f"model.architecture={job['architecture']}"]
        overrides.append(f"model.kwargs={json.dumps(job['kwargs'])}")
    else:
        overrides.append(f"model.init={json.dumps(job['init'])}")
    recipe = load_recipe(RECIPES / f"{FINE_TUNE}.yaml", overrides)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tract-transfer-") as workdir:
        result = train(recipe, Path(workdir) / "run", device="cpu", show_progress=False)
        history = RunDirectory(result.run_dir).read().history
    wall = time.perf_counter() - start
    return [
        {
            "arm": job["arm"],
            "seed": job["seed"],
            "epoch": row["epoch"],
            "top1": round(100 * row["top1"], 4),
            "val_loss": row["val_loss"],
            "pretrained_on": job["pretrained_on"],
            "recipe": FINE_TUNE,
            "run_wall_s": round(wall, 1),
        }
        for row in history
        if row.get("top1") is not None
    ]


def publish(run_dir: Path, folder: Path, repo: str, baseline: Path | None) -> None:
    """``tract-hub push RUN --dry-run --folder DIR``, as a user types it."""
    command = [sys.executable, "-m", "tract_hub.cli", "push", str(run_dir), "--repo", repo, "--dry-run"]
    command += ["--folder", str(folder)] + (["--baseline", str(baseline)] if baseline else [])
    subprocess.run(command, check=True, capture_output=True, text=True)


def machine_strings(workdir: Path, data_root: str | None) -> list[str]:
    """What must not appear in anything published: the work folder, the data root, home, user and host."""
    found = [str(workdir.resolve()), str(Path.home()), socket.gethostname()]
    found += [str(Path(data_root).resolve())] if data_root else ["/usr/share/datasets"]
    found += [name for name in (os.environ.get("USER"), os.environ.get("LOGNAME")) if name]
    return sorted({item for item in found if item})


def leaked(folder: Path, strings: list[str]) -> list[str]:
    """``file: string`` for each machine string in a published file: as a whole word in the text files (a short
    host or user name would match random bytes of the weights), anywhere in every file for paths."""
    hits = []
    for path in sorted(folder.rglob("*")):
        if not path.is_file():
            continue
        content = path.read_bytes()
        text = content.decode("utf-8", "replace") if path.suffix in (".md", ".json") else ""
        for item in strings:
            in_text = re.search(rf"(?<![\w.-]){re.escape(item)}(?![\w.-])", text) is not None
            if in_text or (len(item) >= 8 and item.encode() in content):
                hits.append(f"{path.name}: {item}")
    return hits


_PLAIN_TIMM = textwrap.dedent(
    """
    import json, sys
    import timm, torch
    from torchvision import datasets
    folder, root = sys.argv[1], sys.argv[2]
    model = timm.create_model("local-dir:" + folder, pretrained=True).eval()
    config = timm.data.resolve_data_config(model=model)
    transform = timm.data.create_transform(**config)
    test = datasets.FashionMNIST(root, train=False, transform=transform)
    loader = torch.utils.data.DataLoader(test, batch_size=500)
    correct, first = 0, None
    with torch.no_grad():
        for images, labels in loader:
            logits = model(images)
            first = logits[:8] if first is None else first
            correct += int((logits.argmax(1) == labels).sum())
    config = {key: list(value) if isinstance(value, tuple) else value for key, value in config.items()}
    print(json.dumps({"top1": 100 * correct / len(test), "images": len(test), "config": config,
                      "logits": first.tolist(), "tract_hub_imported": "tract_hub" in sys.modules}))
    """
)


def load_back(folder: Path, data_root: Path) -> dict[str, Any]:
    """Plain timm (a process without tract_hub) and tract_hub.from_pretrained on the same test images."""
    import timm
    import torch
    from torchvision import datasets

    import tract_hub

    done = subprocess.run(
        [sys.executable, "-c", _PLAIN_TIMM, str(folder), str(data_root)],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": ""},
    )
    plain = json.loads(done.stdout.splitlines()[-1])
    ours = tract_hub.from_pretrained(folder).eval()
    transform = timm.data.create_transform(**timm.data.resolve_data_config(model=ours))
    images = torch.stack([transform(datasets.FashionMNIST(str(data_root), train=False)[i][0]) for i in range(8)])
    with torch.no_grad():
        logits = ours(images)
    plain["max_logit_difference"] = float((logits - torch.tensor(plain["logits"])).abs().max())
    del plain["logits"]
    return plain


def _torchvision_layout(data_root: str | None, workdir: Path) -> Path:
    """A torchvision ``FashionMNIST`` layout of the data (plain timm's process reads it with torchvision)."""
    from tract_hub.training.data import fashion_mnist

    root = Path(data_root or "/usr/share/datasets/fashion-mnist")
    if (root / "FashionMNIST" / "raw" / fashion_mnist.FILES[0]).is_file():
        return root
    raw = workdir / "fashion" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    from torchvision.datasets.utils import extract_archive

    for name in fashion_mnist.FILES:
        extract_archive(str(root / f"{name}.gz"), str(raw))
    return workdir / "fashion"


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def recorded(config_path: Path) -> dict[str, Any]:
    """What a published ``config.json`` records of its run: the published (best) checkpoint's top-1 and epoch,
    and the last epoch's top-1 (percent)."""
    block = json.loads(config_path.read_text())["tract_hub"]
    return {
        "published_top1": 100 * block["best"]["top1"],
        "best_epoch": block["best"]["epoch"],
        "final_top1": 100 * block["metrics"]["top1"],
    }


def render(lines: list[dict], pretrained: dict[str, dict], meta: dict) -> str:
    last = [line for line in lines if line["epoch"] == meta["epochs"]]
    final = {arm: {line["seed"]: line["top1"] for line in last if line["arm"] == arm} for arm in ARMS}
    seeds = sorted(set.intersection(*(set(final[arm]) for arm in ARMS)))
    out = [
        "# Transfer: Fashion-MNIST pretraining -> digits (benchmarks/fashion_mnist_transfer.py)",
        "",
        f"Pretraining: `{meta['recipe']}` on the first {meta['train_samples']:,} Fashion-MNIST training images, "
        f"{meta['pretrain_epochs']} epoch(s), seed 0, vanilla and TrAct (λ = {meta['lam']}); each published with "
        "`tract-hub push RUN --dry-run --folder DIR` and loaded back from that folder.",
        "",
        "| pretrained | Fashion-MNIST top-1, last epoch | published (best) checkpoint, as the trainer recorded it | "
        "the same weights in plain timm from `local-dir:`, timm's transform from config.json | max logit "
        "difference, timm vs tract_hub | machine strings in the folder |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for arm in PRETRAINED_ARMS:
        info = pretrained[arm]
        out.append(
            f"| {arm} | {info['final_top1']:.2f} | {info['published_top1']:.2f} (epoch {info['best_epoch']}) | "
            f"{info['plain_timm']['top1']:.2f} | {info['plain_timm']['max_logit_difference']:.1e} | "
            f"{', '.join(info['leaked']) or 'none'} |"
        )
    out += [
        "",
        f"Fine-tuning: `{FINE_TUNE}` (digits 28x28, {meta['epochs']} epoch(s), vanilla fine-tuning, new classifier), "
        f"validation top-1 (%) after the last epoch, seeds {seeds}:",
        "",
        "| start | mean ± std | per seed | − scratch (paired) |",
        "|---|---:|---|---:|",
    ]
    for arm in ARMS:
        values = [final[arm][s] for s in seeds]
        mean, std = _mean_std(values) if values else (float("nan"), 0.0)
        per_seed = ", ".join(f"{final[arm][s]:.2f}" for s in seeds)
        diff = _mean_std([final[arm][s] - final["scratch"][s] for s in seeds]) if seeds else (0.0, 0.0)
        vs = "—" if arm == "scratch" else f"{diff[0]:+.2f} ± {diff[1]:.2f}"
        out.append(f"| {arm} | {mean:.2f} ± {std:.2f} | {per_seed} | {vs} |")
    out += [
        "",
        f"Wall time: {meta['wall_min']:.1f} min ({meta['jobs']} processes x {meta['threads']} thread(s), on a machine "
        "that other work shared: not a measure of what the script costs).",
    ]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="fashion_mnist_vit", help="the pretraining recipe in recipes/")
    parser.add_argument("--epochs", type=int, default=15, help="pretraining epochs")
    parser.add_argument("--train-samples", type=int, default=10_000, help="pretraining: the first N images")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="fine-tuning seeds")
    parser.add_argument("--fine-tune-epochs", type=int, default=None, help="default: the fine-tuning recipe's")
    parser.add_argument("--lam", type=float, default=0.1)
    parser.add_argument("--data-root", default=None, help="Fashion-MNIST's folder (default: the recipe's own)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="where runs and Hub folders go (default: a temporary one)")
    parser.add_argument("--output", default=str(RESULTS / "fashion_mnist_transfer"), help="result path prefix")
    parser.add_argument("--report-only", action="store_true", help="render the recorded results again, train nothing")
    args = parser.parse_args()
    if args.report_only:
        report(Path(args.output))
        return
    start = time.perf_counter()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="tract-transfer-")).resolve()
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.jobs, initializer=_init_worker, initargs=(args.threads,)) as pool:
        jobs = [
            {"recipe": args.recipe, "arm": arm, "lam": args.lam, "epochs": args.epochs, "data_root": args.data_root,
             "train_samples": args.train_samples, "run_dir": str(workdir / "runs" / f"{args.recipe}-{arm}")}
            for arm in PRETRAINED_ARMS
        ]  # fmt: skip
        pool.map(pretrain, jobs)
        runs = {job["arm"]: Path(job["run_dir"]) for job in jobs}
        print("pretrained", flush=True)

        from tract_hub.training.recipe import load_recipe

        strings = machine_strings(workdir, args.data_root)
        data_root = _torchvision_layout(args.data_root, workdir)
        pretrained, folders = {}, {}
        copies = output.with_suffix("")
        for arm in PRETRAINED_ARMS:
            folder = workdir / "hub" / f"{args.recipe}-{arm}"
            baseline = runs["vanilla"] if arm == "tract" else None
            publish(runs[arm], folder, f"tract-hub-examples/{args.recipe}-{arm}", baseline)
            folders[arm] = folder
            pretrained[arm] = {
                "leaked": leaked(folder, strings),
                "plain_timm": load_back(folder, data_root),
                "files": sorted(path.name for path in folder.iterdir()),
            }
            (copies / arm).mkdir(parents=True, exist_ok=True)
            for name in ("README.md", "config.json"):
                shutil.copy(folder / name, copies / arm / name)
            print(f"published and loaded back {arm}: {json.dumps(pretrained[arm])}", flush=True)

        model = load_recipe(RECIPES / f"{args.recipe}.yaml").model
        fine_tune_jobs = [
            {"arm": f"{arm}-pretrained", "seed": seed, "init": str(folders[arm]), "pretrained_on": args.recipe,
             "epochs": args.fine_tune_epochs}
            for seed in args.seeds
            for arm in PRETRAINED_ARMS
        ] + [
            {"arm": "scratch", "seed": seed, "init": None, "pretrained_on": None, "epochs": args.fine_tune_epochs,
             "architecture": model.architecture, "kwargs": model.kwargs}
            for seed in args.seeds
        ]  # fmt: skip
        lines: list[dict] = []
        for run in pool.imap_unordered(fine_tune, fine_tune_jobs):
            lines += run
            print(f"fine-tuned {run[-1]['arm']} seed {run[-1]['seed']}: {run[-1]['top1']:.2f}%", flush=True)
    fine_tune_epochs = max(line["epoch"] for line in lines)
    output.with_suffix(".jsonl").write_text("".join(json.dumps(line, sort_keys=True) + "\n" for line in lines))
    meta = {
        "recipe": args.recipe,
        "train_samples": args.train_samples,
        "pretrain_epochs": args.epochs,
        "epochs": fine_tune_epochs,
        "lam": args.lam,
        "jobs": args.jobs,
        "threads": args.threads,
        "wall_min": (time.perf_counter() - start) / 60,
    }
    (copies / "pretrained.json").write_text(json.dumps({"meta": meta, **pretrained}, indent=2, sort_keys=True) + "\n")
    report(output)
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)


def report(output: Path) -> None:
    """The table from the recorded results (``--report-only`` renders it again without training)."""
    copies = output.with_suffix("")
    lines = [json.loads(line) for line in output.with_suffix(".jsonl").read_text().splitlines() if line.strip()]
    saved = json.loads((copies / "pretrained.json").read_text())
    meta = saved.pop("meta")
    pretrained = {arm: {**saved[arm], **recorded(copies / arm / "config.json")} for arm in PRETRAINED_ARMS}
    text = render(lines, pretrained, meta)
    print()
    print(text)
    output.with_suffix(".md").write_text(text)


if __name__ == "__main__":
    main()
