"""Whole training step on a CPU: the share of the step spent in TrAct's code, and the step-time ratio to vanilla.

For the paper's CIFAR ResNet-18 and CIFAR ViT and timm's ResNet-50 and ViT-S/16, one step (zero_grad, forward,
cross-entropy, backward, SGD step) of vanilla, TrAct exact and TrAct per-backward is timed on one thread in thread
CPU time, the variants once per round in a shuffled order, medians. TrAct's share is the thread time spent inside
the patched layer's forward and backward code (``GradientState.forward`` and ``.weight_gradient``, which eager
mode and the compiled operators both run; the dispatch around them is not counted) divided by the step's time:
a direct measurement, unlike the step-time difference to vanilla, which on
a shared machine is within the noise for a 1-2% cost (both are reported). Writes
``benchmarks/results/step_share.json`` and ``.md``. About 4 minutes here with the defaults.

    python benchmarks/step_share.py
    PYTHONPATH=/path/to/other/checkout python benchmarks/step_share.py --label before --out /tmp/before
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from reporting import write_report
from step_models import MODELS

import tract_hub
from tract_hub.patching.gradient import GradientState

RESULTS = Path(__file__).parent / "results"
DEFAULT_MODELS = {"cifar-resnet18": 32, "cifar-vit": 32, "resnet50": 8, "vit-s16": 8}  # model: batch
VARIANTS = ("vanilla", "exact", "per_backward")


class Clock:
    """Thread time spent inside TrAct's forward and backward (the layer state's two methods, which the eager
    autograd.Function and the compiled custom operators both call), summed until read."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.originals = {name: getattr(GradientState, name) for name in ("forward", "weight_gradient")}

    def __enter__(self) -> Clock:
        for name, original in self.originals.items():
            setattr(GradientState, name, self._timed(original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, original in self.originals.items():
            setattr(GradientState, name, original)

    def _timed(self, function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds += time.thread_time() - start

        return wrapper

    def take(self) -> float:
        seconds, self.seconds = self.seconds, 0.0
        return seconds


def measure(key: str, batch: int, rounds: int, clock: Clock) -> dict:
    spec = MODELS[key]
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 3, spec.image_size, spec.image_size, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    built = {}
    for variant in VARIANTS:
        torch.manual_seed(0)
        model = spec.build()
        if variant != "vanilla":
            tract_hub.patch(model, 0.1, target=spec.first_layer, exact=variant == "exact")
        built[variant] = (model, torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9))

    def step(variant: str) -> tuple[float, float]:
        model, optimizer = built[variant]
        clock.take()
        start = time.thread_time()
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        optimizer.step()
        return time.thread_time() - start, clock.take()

    order, rng = list(VARIANTS), random.Random(0)
    steps: dict[str, list[float]] = {v: [] for v in VARIANTS}
    inside: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for index in range(rounds + 1):  # one warm-up round
        rng.shuffle(order)
        for variant in order:
            seconds, tract = step(variant)
            if index:
                steps[variant].append(seconds)
                inside[variant].append(tract)
    median = {v: statistics.median(steps[v]) for v in VARIANTS}
    share = {v: statistics.median(t / s for t, s in zip(inside[v], steps[v], strict=True)) for v in VARIANTS[1:]}
    return {
        "batch": batch,
        "median_step_s": median,
        "tract_share": share,
        "step_ratio": {v: median[v] / median["vanilla"] for v in VARIANTS[1:]},
    }


def markdown(results: dict, environment: dict) -> str:
    lines = [
        f"Training step, {environment['label']}: one thread, thread CPU time, {environment['rounds']} interleaved "
        f"rounds, medians (load average {environment['load_before']:.1f} before, {environment['load_after']:.1f} "
        "after).",
        "",
        "| model | batch | vanilla step ms | TrAct's share of the step: exact / per-backward | "
        "step / vanilla: exact / per-backward |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, r in results.items():
        share, ratio = r["tract_share"], r["step_ratio"]
        lines.append(
            f"| {MODELS[key].name} | {r['batch']} | {r['median_step_s']['vanilla'] * 1e3:.0f} | "
            f"{share['exact'] * 100:.2f}% / {share['per_backward'] * 100:.2f}% | "
            f"{ratio['exact']:.3f} / {ratio['per_backward']:.3f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), choices=sorted(MODELS))
    parser.add_argument("--batch", type=int, default=None, help="one batch for every model (default: per model)")
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (median reported)")
    parser.add_argument("--label", default="this checkout", help="names the engine measured in the output")
    parser.add_argument("--out", type=Path, default=RESULTS / "step_share", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    environment = {"label": args.label, "rounds": args.rounds, "torch": torch.__version__}
    environment["load_before"] = os.getloadavg()[0]
    with Clock() as clock:
        results = {
            key: measure(key, args.batch or DEFAULT_MODELS.get(key, 8), args.rounds, clock) for key in args.models
        }
    environment["load_after"] = os.getloadavg()[0]
    write_report(args.out, markdown(results, environment), {"environment": environment, "results": results})


if __name__ == "__main__":
    main()
