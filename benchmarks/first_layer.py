"""First-layer benchmark: TrAct's extra forward+backward time over a plain layer, against torch_tract's, and memory.

The method of issue 19: one thread (``torch.set_num_threads(1)``), thread CPU time (``time.thread_time``, so other
processes on a shared machine do not count), every variant once per round in a shuffled order, medians over the
rounds. The figure that matters is ``extra(tract_hub) / extra(torch_tract)``, where ``extra(v)`` is the median time
of variant ``v`` minus vanilla's: TrAct's own cost as a fraction of the paper's implementation's (``pip install
torch_tract``; a comparison only, never a dependency); beside it, the median over rounds of the same ratio taken
within each round (:func:`paired_ratio`), which a drifting machine speed moves less. Both TrAct modes are timed:
exact (the default) and per-backward (``exact=False``). Peak memory is measured for one backward with the PyTorch
profiler's allocation events: the most bytes alive at any point of it, counting the input, the upstream gradient,
the layer's weights and the state a patched layer keeps between steps. The summation path the precision rule chose
for the case's input is recorded. Writes ``benchmarks/results/first_layer.json`` and ``first_layer.md``.

    python benchmarks/first_layer.py                  # the three layers of issue 19, 21 rounds: ~4 min here
    python benchmarks/first_layer.py --rounds 5 --cases vit-s16-patch16-b8 --forced float32 float64
    PYTHONPATH=/path/to/other/checkout python benchmarks/first_layer.py --label before   # another engine
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import os
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from reporting import write_report
from torch import nn
from torch.profiler import ProfilerActivity, profile, record_function

import tract_hub

RESULTS = Path(__file__).parent / "results"


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]
    target: float | None = None  # issue 19: extra(tract_hub) / extra(torch_tract) at most this


CASES = [
    Case("cifar-stem-b128", lambda: nn.Conv2d(3, 64, 3, 1, 1, bias=False), (128, 3, 32, 32), 0.25),
    Case("imagenet-stem-b16", lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False), (16, 3, 224, 224), 0.25),
    Case("vit-s16-patch16-b8", lambda: nn.Conv2d(3, 384, 16, 16), (8, 3, 224, 224), 0.8),
    Case("cifar-vit-patch4-b128", lambda: nn.Conv2d(3, 384, 4, 4), (128, 3, 32, 32)),
    Case("imagenet-stem-b64", lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False), (64, 3, 224, 224)),
    # the fixed cost of one call: too little data for the covariance to matter (issue 19's small layer)
    Case("small-conv-b2-8x8", lambda: nn.Conv2d(3, 64, 3, 1, 1), (2, 3, 8, 8)),
]
DEFAULT_CASES = [case.name for case in CASES if case.target is not None]
MODES = {"exact": True, "per_backward": False}
FORCED_PREFIX = "tract_hub_per_backward_forced_"
MEASURED = "first_layer.measured_backward"


def summation_context(name: str) -> contextlib.AbstractContextManager:
    """For a forced variant, the engine's ``forced_summation``; otherwise nothing."""
    if not name.startswith(FORCED_PREFIX):
        return contextlib.nullcontext()
    from tract_hub.engine import forced_summation

    return forced_summation(getattr(torch, name.removeprefix(FORCED_PREFIX)))


def variants(layer: nn.Module, forced: list[str]) -> dict[str, nn.Module]:
    found = {"vanilla": layer}
    for mode, exact in MODES.items():
        found[f"tract_hub_{mode}"] = tract_hub.patch(copy.deepcopy(layer), 0.1, target="", exact=exact)
    for dtype in forced:  # per-backward mode with the summation forced (FORCED_PREFIX + dtype)
        found[FORCED_PREFIX + dtype] = tract_hub.patch(copy.deepcopy(layer), 0.1, target="", exact=False)
    try:
        import torch_tract  # comparison only, never a dependency
    except ImportError:
        return found
    found["torch_tract"] = torch_tract.TrAct(copy.deepcopy(layer), l=0.1)
    return found


def step(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor, name: str = "") -> None:
    layer.zero_grad(set_to_none=True)
    with summation_context(name):
        layer(x).backward(upstream)


def timed(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor, name: str) -> float:
    start = time.thread_time()
    step(layer, x, upstream, name)
    return time.thread_time() - start


def backward_peak_bytes(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor, name: str) -> int:
    """The most bytes alive during one backward (the input and upstream gradient included). Everything else is
    allocated while the profiler records, so that frees are seen too: a copy of the layer, one step (the state a
    patched layer keeps between steps: its accumulation, what ``.grad`` held), then the measured step."""
    with summation_context(name), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        copied = copy.deepcopy(layer)
        step(copied, x, upstream)
        copied.zero_grad(set_to_none=True)
        out = copied(x)
        with record_function(MEASURED):
            out.backward(upstream)
        del copied, out
    events = prof.profiler.kineto_results.events()
    (measured,) = [e for e in events if e.name() == MEASURED]
    current, peak = 0, 0
    for event in sorted((e for e in events if e.name() == "[memory]"), key=lambda e: e.start_ns()):
        current += event.nbytes()
        if measured.start_ns() <= event.start_ns() <= measured.end_ns():
            peak = max(peak, current)
    return x.nbytes + upstream.nbytes + peak


def summation_path(layer: nn.Module, x: torch.Tensor) -> str:
    """The covariance summation the engine chooses for this input (``"float64"`` on engines before the rule)."""
    try:
        from tract_hub.engine import LayerGeometry
        from tract_hub.engine.covariance import summation_for
    except ImportError:
        return "float64 (engine without the rule)"
    geometry = LayerGeometry.for_conv(layer.weight, layer.stride, layer.padding, layer.dilation, layer.groups)
    plan = summation_for(x, geometry, lam=0.1)
    return str(plan.dtype).removeprefix("torch.")


def run_case(case: Case, rounds: int, seed: int, forced: list[str]) -> dict:
    torch.manual_seed(seed)
    layer = case.build()
    x = torch.randn(case.input_shape)
    with torch.no_grad():
        upstream = torch.randn_like(layer(x))
    layers = variants(layer, forced)
    for name, module in layers.items():  # warm-up
        step(module, x, upstream, name)
    times: dict[str, list[float]] = {name: [] for name in layers}
    order, rng = list(layers), random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            times[name].append(timed(layers[name], x, upstream, name))
    median = {name: statistics.median(values) for name, values in times.items()}
    extra = {name: t - median["vanilla"] for name, t in median.items() if name != "vanilla"}
    peak = {name: backward_peak_bytes(module, x, upstream, name) for name, module in layers.items()}
    result = {
        "case": case.name,
        "input_shape": list(case.input_shape),
        "rounds": rounds,
        "summation": summation_path(layer, x),
        "median_s": median,
        "extra_s": extra,
        "peak_backward_bytes": peak,
        "covariance_bytes": 8 * layer.weight[0].numel() ** 2,
        "target": case.target,
    }
    if "torch_tract" in extra and extra["torch_tract"] > 0:
        ours = [name for name in extra if name.startswith("tract_hub_")]
        result["extra_over_torch_tract"] = {
            name.removeprefix("tract_hub_"): extra[name] / extra["torch_tract"] for name in ours
        }
        result["extra_over_torch_tract_paired"] = {
            name.removeprefix("tract_hub_"): paired_ratio(times, name, "torch_tract") for name in ours
        }
    return result


def paired_ratio(times: dict[str, list[float]], ours: str, theirs: str) -> float:
    """The median over rounds of ``extra(ours) / extra(theirs)`` within each round: the variants of one round ran
    seconds apart, so a slow drift of the machine's speed (a shared host) cancels out of each round's ratio."""
    ratios = []
    for plain, mine, other in zip(times["vanilla"], times[ours], times[theirs], strict=True):
        if other > plain:
            ratios.append((mine - plain) / (other - plain))
    return statistics.median(ratios) if ratios else float("nan")


def markdown(results: list[dict], environment: dict) -> str:
    mib = 2.0**20
    lines = [
        f"First layer forward + backward, {environment['label']}: one thread, thread CPU time, "
        f"{results[0]['rounds'] if results else 0} interleaved rounds, medians "
        f"(load average {environment['load_before']:.1f} before, {environment['load_after']:.1f} after).",
        "",
        "| layer | summation | vanilla ms | extra ms: exact / per-backward / torch_tract | "
        "extra / torch_tract's: exact / per-backward, of the medians (paired: median of each round's) (target) "
        "[forced] | peak MiB: vanilla / exact / per-backward / "
        "torch_tract (covariance) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in results:
        e, p = r["extra_s"], r["peak_backward_bytes"]
        theirs = f"{e['torch_tract'] * 1e3:.1f}" if "torch_tract" in e else "-"
        ratios, paired = r.get("extra_over_torch_tract", {}), r.get("extra_over_torch_tract_paired", {})
        ratio = " / ".join(f"{ratios[m]:.2f}" if m in ratios else "-" for m in MODES)
        if paired:
            ratio += " (paired: " + " / ".join(f"{paired[m]:.2f}" if m in paired else "-" for m in MODES) + ")"
        target = f" (<= {r['target']})" if r["target"] else ""
        names = ("vanilla", "tract_hub_exact", "tract_hub_per_backward", "torch_tract")
        peaks = " / ".join(f"{p[name] / mib:.0f}" if name in p else "-" for name in names)
        forced = [k for k in ratios if k.startswith("per_backward_forced_")]
        if forced:
            named = (f"{k.removeprefix('per_backward_forced_')}: {ratios[k]:.2f}" for k in forced)
            target += " [per-backward, " + ", ".join(named) + "]"
        lines.append(
            f"| {r['case']} | {r['summation']} | {r['median_s']['vanilla'] * 1e3:.1f} | "
            f"{e['tract_hub_exact'] * 1e3:.1f} / {e['tract_hub_per_backward'] * 1e3:.1f} / {theirs} | "
            f"{ratio}{target} | {peaks} ({r['covariance_bytes'] / mib:.1f}) |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21, help="timed rounds per case (median reported)")
    parser.add_argument("--cases", nargs="*", default=DEFAULT_CASES, choices=[c.name for c in CASES])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--label", default="this checkout", help="names the engine measured in the output")
    parser.add_argument(
        "--forced",
        nargs="*",
        default=[],
        choices=["float32", "float64"],
        help="also time per-backward mode with the covariance summed in these dtypes (the GPU paths)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS / "first_layer", help="writes OUT.json and OUT.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    environment = {
        "label": args.label,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "load_before": os.getloadavg()[0],
    }
    results = []
    for case in CASES:
        if case.name in args.cases:
            results.append(run_case(case, args.rounds, args.seed, args.forced))
            print(f"{case.name}: done", flush=True)
    environment["load_after"] = os.getloadavg()[0]
    write_report(args.out, markdown(results, environment), {"environment": environment, "results": results})


if __name__ == "__main__":
    main()
