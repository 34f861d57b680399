"""What exactness costs: training-step time of exact TrAct vs the paper's per-backward TrAct vs vanilla, on one
process and on gloo ranks (DDP), and the bytes exact mode all-reduces per step.

One step is: zero_grad, forward, cross-entropy, backward, SGD step. The three variants of a model (same weights,
same batch) run once per round in a shuffled order; the medians over the rounds are reported (CPU, perf_counter,
ranks aligned by a barrier before each step). The bytes are those of the buffers exact mode hands to
``torch.distributed.all_reduce`` in one step (one flat float64 buffer of ``groups x n x n + 1`` numbers per
synchronizing backward), counted on the call itself.

    python benchmarks/exact_mode.py                          # CIFAR ResNet-18 and CIFAR ViT, 1 and 2 processes
    python benchmarks/exact_mode.py --worlds 2 --rounds 5 --models cifar-vit
    python benchmarks/exact_mode.py --worlds 1 --compile --json benchmarks/results/exact_mode_compiled.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from step_models import MODELS, interleaved_medians
from torch import nn

import tract_hub
from tract_hub.patching import distributed as tract_distributed

VARIANTS = ("vanilla", "per_backward", "exact")


def build(model_key: str, variant: str, distributed: bool, compiled: bool) -> tuple[nn.Module, torch.optim.Optimizer]:
    spec = MODELS[model_key]
    torch.manual_seed(0)
    model = spec.build()
    if variant != "vanilla":
        tract_hub.patch(model, 0.1, target=spec.first_layer, exact=variant == "exact")
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    wrapped = nn.parallel.DistributedDataParallel(model) if distributed else model
    return (torch.compile(wrapped) if compiled else wrapped), optimizer


def measure(model_key: str, batch: int, rounds: int, distributed: bool, compiled: bool = False) -> dict:
    spec = MODELS[model_key]
    generator = torch.Generator().manual_seed(dist.get_rank() if distributed else 0)
    x = torch.randn(batch, 3, spec.image_size, spec.image_size, generator=generator)
    y = torch.randint(0, 10, (batch,), generator=generator)
    built = {variant: build(model_key, variant, distributed, compiled) for variant in VARIANTS}

    def step_of(variant: str):
        model, optimizer = built[variant]

        def step() -> float:
            if distributed:
                dist.barrier()
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
            return time.perf_counter() - start

        return step

    medians = interleaved_medians({variant: step_of(variant) for variant in VARIANTS}, rounds)
    return {"median_step_s": medians, "all_reduced_bytes_per_step": bytes_per_step(*built["exact"], x, y)}


def bytes_per_step(model: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> int:
    sent: list[int] = []
    original = tract_distributed.Reduction.all_reduce

    def counting(self, buffer: torch.Tensor) -> None:
        sent.append(buffer.numel() * buffer.element_size() * len(self.groups))
        original(self, buffer)

    tract_distributed.Reduction.all_reduce = counting
    try:
        optimizer.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
    finally:
        tract_distributed.Reduction.all_reduce = original
    return sum(sent)


def worker(
    rank: int, world: int, rendezvous: str, out: str, models: list[str], batch: int, rounds: int, compiled: bool
) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    results = {key: measure(key, batch // world, rounds, True, compiled) for key in models}
    if rank == 0:
        Path(out).write_text(json.dumps(results))
    dist.destroy_process_group()


def run_world(world: int, models: list[str], batch: int, rounds: int, compiled: bool) -> dict:
    if world == 1:
        return {key: measure(key, batch, rounds, False, compiled) for key in models}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        arguments = (world, f"{tmp}/rendezvous", str(out), models, batch, rounds, compiled)
        mp.spawn(worker, args=arguments, nprocs=world)
        return json.loads(out.read_text())


def table(results: dict, batch: int, compiled: bool) -> str:
    how = "torch.compile" if compiled else "eager"
    lines = [
        f"Training step ({how}, global batch {batch}), medians; ratios against vanilla and exact against per-backward:",
        "",
        "| model | processes | vanilla ms | per-backward ms (x) | exact ms (x) | exact / per-backward "
        "| bytes per step |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for world, by_model in results.items():
        for key, result in by_model.items():
            m = result["median_step_s"]
            v, p, e = m["vanilla"], m["per_backward"], m["exact"]
            lines.append(
                f"| {MODELS[key].name} | {world} | {v * 1e3:.1f} | {p * 1e3:.1f} ({p / v:.3f}) | "
                f"{e * 1e3:.1f} ({e / v:.3f}) | {e / p:.3f} | {result['all_reduced_bytes_per_step']:,} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["cifar-resnet18", "cifar-vit"], choices=sorted(MODELS))
    parser.add_argument("--worlds", nargs="+", type=int, default=[1, 2], help="process counts (CPU, gloo)")
    parser.add_argument("--batch", type=int, default=32, help="global batch (split evenly over the processes)")
    parser.add_argument("--rounds", type=int, default=15, help="timed rounds (median reported)")
    parser.add_argument("--compile", action="store_true", help="torch.compile every variant (default Inductor)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "exact_mode.json")
    args = parser.parse_args()
    results = {world: run_world(world, args.models, args.batch, args.rounds, args.compile) for world in args.worlds}
    print(table(results, args.batch, args.compile))
    record = {
        "compiled": args.compile,
        "batch": args.batch,
        "rounds": args.rounds,
        "threads_single_process": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "results": {str(world): by_model for world, by_model in results.items()},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2, sort_keys=True))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
