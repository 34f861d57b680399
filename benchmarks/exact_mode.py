"""Exact mode's cost under torch.distributed: bytes all-reduced per step, and step time vs per-backward mode.

Spawns ``--world`` CPU processes (gloo on loopback, one thread each) and measures, inside them:

* for each benchmark layer, the bytes that ``tract_hub.finalize`` all-reduces per optimizer step (the size of
  the buffers it actually sends: ``n x n + 1`` float32 numbers per layer, plus one number by which the ranks
  agree on float32 or float64);
* the median time of a full DDP training step (forward, backward, finalize where exact, SGD step) of a CIFAR
  ResNet-18 for exact mode and for per-backward mode, the two models interleaved round by round.

    python benchmarks/exact_mode.py --world 2 --rounds 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from torch import nn

import tract_hub

LAYERS = {
    # name: (layer, input shape per rank)
    "cifar-resnet18-stem (n=27)": (lambda: nn.Conv2d(3, 64, 3, 1, 1, bias=False), (2, 3, 32, 32)),
    "cifar-vit-patch4 (n=48)": (lambda: nn.Conv2d(3, 384, 4, 4), (2, 3, 32, 32)),
    "imagenet-stem (n=147)": (lambda: nn.Conv2d(3, 64, 7, 2, 3, bias=False), (2, 3, 64, 64)),
    "vit-s16-patch16 (n=768)": (lambda: nn.Conv2d(3, 384, 16, 16), (2, 3, 64, 64)),
    "vit-b16-patch16 (n=768)": (lambda: nn.Conv2d(3, 768, 16, 16), (2, 3, 64, 64)),
}


def bytes_per_step() -> dict[str, int]:
    sent = {}
    for name, (build, shape) in LAYERS.items():
        layer = tract_hub.patch(build(), target="", exact=True)
        layer(torch.randn(shape)).sum().backward()
        sent[name] = tract_hub.finalize(layer)
    return sent


def step_times(rounds: int, batch: int) -> dict[str, float]:
    import timm

    import tract_hub.models

    models = {}
    for mode in ("per_backward", "exact"):
        torch.manual_seed(0)
        model = timm.create_model("tract_resnet18_cifar", num_classes=10)
        tract_hub.patch(model, 0.1, target="conv1", exact=mode == "exact")
        ddp = nn.parallel.DistributedDataParallel(model)
        models[mode] = (ddp, torch.optim.SGD(ddp.parameters(), lr=0.01, momentum=0.9))
    generator = torch.Generator().manual_seed(dist.get_rank())
    x, y = torch.randn(batch, 3, 32, 32, generator=generator), torch.randint(0, 10, (batch,), generator=generator)
    times: dict[str, list[float]] = {mode: [] for mode in models}
    for index in range(rounds + 2):
        order = list(models) if index % 2 == 0 else list(reversed(models))
        for mode in order:
            ddp, optimizer = models[mode]
            dist.barrier()
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(ddp(x), y).backward()
            if mode == "exact":
                tract_hub.finalize(ddp)
            optimizer.step()
            elapsed = time.perf_counter() - start
            if index >= 2:  # two warm-up rounds
                times[mode].append(elapsed)
    return {mode: statistics.median(values) for mode, values in times.items()}


def worker(rank: int, world: int, rendezvous: str, out: str, rounds: int, batch: int) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    result = {"bytes_per_step": bytes_per_step(), "median_step_s": step_times(rounds, batch)}
    if rank == 0:
        Path(out).write_text(json.dumps(result))
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=int, default=2, help="processes (CPU, gloo)")
    parser.add_argument("--rounds", type=int, default=20, help="timed steps per mode (median reported)")
    parser.add_argument("--batch", type=int, default=32, help="images per process")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "exact_mode.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        mp.spawn(worker, args=(args.world, f"{tmp}/rendezvous", str(out), args.rounds, args.batch), nprocs=args.world)
        result = json.loads(out.read_text())
    times = result["median_step_s"]
    result.update(
        world=args.world,
        batch_per_process=args.batch,
        rounds=args.rounds,
        exact_over_per_backward=times["exact"] / times["per_backward"],
    )
    print("| layer | bytes all-reduced per step |\n|---|---|")
    for name, sent in result["bytes_per_step"].items():
        print(f"| {name} | {sent:,} ({sent / 2**20:.2f} MiB) |")
    print(f"\nCIFAR ResNet-18 DDP step, {args.world} CPU processes x {args.batch} images, median of {args.rounds}:")
    print(
        f"per-backward {times['per_backward'] * 1e3:.1f} ms, exact {times['exact'] * 1e3:.1f} ms, "
        f"ratio {result['exact_over_per_backward']:.3f}"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, sort_keys=True))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
