"""First-layer benchmark: extra time and peak memory of TrAct over a plain layer (and over torch_tract, if installed).

For each case one forward + backward of the first layer alone (input without gradient, a fixed upstream
gradient) is timed for every variant, the variants interleaved in a shuffled order in each round, and the median
over the rounds is reported. Peak memory is measured for one backward with the PyTorch profiler's allocation
events: the tensors alive when the backward starts (input, output, upstream gradient, saved tensors) plus the
highest point the backward's own allocations reach. Prints a Markdown table and writes JSON.

    python benchmarks/first_layer.py                 # all cases, 15 rounds
    python benchmarks/first_layer.py --rounds 5 --cases imagenet-stem-b64
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

import tract_hub


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[], nn.Module]
    input_shape: tuple[int, ...]


CASES = [
    Case("cifar-resnet18-stem-b32", lambda: nn.Conv2d(3, 64, 3, 1, 1, bias=False), (32, 3, 32, 32)),
    Case("cifar-resnet18-stem-b128", lambda: nn.Conv2d(3, 64, 3, 1, 1, bias=False), (128, 3, 32, 32)),
    Case("cifar-vit-patch4-b32", lambda: nn.Conv2d(3, 384, 4, 4), (32, 3, 32, 32)),
    Case("cifar-vit-patch4-b128", lambda: nn.Conv2d(3, 384, 4, 4), (128, 3, 32, 32)),
    Case("imagenet-stem-b16", lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False), (16, 3, 224, 224)),
    Case("imagenet-stem-b64", lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False), (64, 3, 224, 224)),
    Case("vit-s16-patch16-b64", lambda: nn.Conv2d(3, 384, 16, 16), (64, 3, 224, 224)),
]


def variants(layer: nn.Module) -> dict[str, nn.Module]:
    found = {"vanilla": layer, "tract_hub": tract_hub.patch(copy.deepcopy(layer), 0.1, target="")}
    try:
        import torch_tract  # comparison only, never a dependency
    except ImportError:
        return found
    found["torch_tract"] = torch_tract.TrAct(copy.deepcopy(layer), l=0.1)
    return found


def step(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> None:
    layer.zero_grad(set_to_none=True)
    layer(x).backward(upstream)


def timed(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> float:
    start = time.perf_counter()
    step(layer, x, upstream)
    return time.perf_counter() - start


def backward_peak_bytes(layer: nn.Module, x: torch.Tensor, upstream: torch.Tensor) -> tuple[int, int]:
    """(bytes alive when the backward starts, highest extra bytes allocated during the backward)."""
    layer.zero_grad(set_to_none=True)
    out = layer(x)
    alive = x.nbytes + out.nbytes + upstream.nbytes  # the forward saves x (and the weight), returns out
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        out.backward(upstream)
    events = [e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"]
    current = peak = 0
    for event in sorted(events, key=lambda e: e.start_ns()):
        current += event.nbytes()
        peak = max(peak, current)
    return alive, peak


def run_case(case: Case, rounds: int, seed: int) -> dict:
    torch.manual_seed(seed)
    layer = case.build()
    x = torch.randn(case.input_shape)
    with torch.no_grad():
        upstream = torch.randn_like(layer(x))
    layers = variants(layer)
    for module in layers.values():  # warm-up
        step(module, x, upstream)
    times: dict[str, list[float]] = {name: [] for name in layers}
    order = list(layers)
    rng = random.Random(seed)
    for _ in range(rounds):
        rng.shuffle(order)
        for name in order:
            times[name].append(timed(layers[name], x, upstream))
    median = {name: statistics.median(values) for name, values in times.items()}
    memory = {name: backward_peak_bytes(module, x, upstream) for name, module in layers.items()}
    result = {"case": case.name, "input_shape": list(case.input_shape), "rounds": rounds, "median_s": median}
    result["peak_backward_bytes"] = {name: alive + peak for name, (alive, peak) in memory.items()}
    result["extra_backward_bytes"] = {name: peak for name, (_, peak) in memory.items()}
    base = median["vanilla"]
    result["extra_time_s"] = {name: t - base for name, t in median.items() if name != "vanilla"}
    result["time_ratio_vs_vanilla"] = {name: t / base for name, t in median.items() if name != "vanilla"}
    vanilla_peak = result["peak_backward_bytes"]["vanilla"]
    result["peak_ratio_vs_vanilla"] = {
        name: peak / vanilla_peak for name, peak in result["peak_backward_bytes"].items() if name != "vanilla"
    }
    if "torch_tract" in median:
        result["extra_time_tract_hub_over_torch_tract"] = (
            result["extra_time_s"]["tract_hub"] / result["extra_time_s"]["torch_tract"]
        )
    return result


def markdown(results: list[dict]) -> str:
    has_ref = any("torch_tract" in r["median_s"] for r in results)
    head = "| case | vanilla ms | tract_hub ms (x) | extra ms | peak MiB vanilla / tract_hub (x) |"
    rule = "|---|---|---|---|---|"
    if has_ref:
        head += " torch_tract ms (x) | torch_tract peak MiB (x) | tract_hub extra / torch_tract extra |"
        rule += "---|---|---|"
    lines = [head, rule]
    mib = 2.0**20
    for r in results:
        m, peak = r["median_s"], r["peak_backward_bytes"]
        line = (
            f"| {r['case']} | {m['vanilla'] * 1e3:.1f} | {m['tract_hub'] * 1e3:.1f} "
            f"({r['time_ratio_vs_vanilla']['tract_hub']:.2f}) | {r['extra_time_s']['tract_hub'] * 1e3:.1f} | "
            f"{peak['vanilla'] / mib:.0f} / {peak['tract_hub'] / mib:.0f} "
            f"({r['peak_ratio_vs_vanilla']['tract_hub']:.2f}) |"
        )
        if has_ref:
            line += (
                f" {m['torch_tract'] * 1e3:.1f} ({r['time_ratio_vs_vanilla']['torch_tract']:.2f}) | "
                f"{peak['torch_tract'] / mib:.0f} ({r['peak_ratio_vs_vanilla']['torch_tract']:.2f}) | "
                f"{r['extra_time_tract_hub_over_torch_tract']:.2f} |"
            )
        lines.append(line)
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds per case (median reported)")
    parser.add_argument("--cases", nargs="*", default=None, help="case names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "first_layer.json")
    args = parser.parse_args()
    cases = [c for c in CASES if args.cases is None or c.name in args.cases]
    results = []
    for case in cases:
        results.append(run_case(case, args.rounds, args.seed))
        print(f"{case.name}: done", flush=True)
    environment = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "device": "cpu",
    }
    print(markdown(results))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"environment": environment, "results": results}, indent=2, sort_keys=True))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
