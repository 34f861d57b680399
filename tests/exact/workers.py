"""Code run inside each spawned torch.distributed process (gloo on loopback)."""

from __future__ import annotations

import os
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

import tract_hub
from tests.exact.scenarios import LAM, Scenario, make_model, train_step


def wrap(model: torch.nn.Module, scenario: Scenario, world: int) -> torch.nn.Module:
    if scenario.wrapper == "fsdp2":
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh("cpu", (world,))
        fully_shard(model[0], mesh=mesh)
        return fully_shard(model, mesh=mesh)
    if scenario.wrapper == "ddp-compiled":  # DDP over the model compiled into one graph, TrAct's operators in it
        return torch.nn.parallel.DistributedDataParallel(torch.compile(model, fullgraph=True, backend="aot_eager"))
    return torch.nn.parallel.DistributedDataParallel(model)


def run_rank(rank: int, world: int, rendezvous: str, out_dir: str, scenarios: list[Scenario]) -> None:
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    results: dict[str, dict] = {}
    try:
        for scenario in scenarios:
            try:
                model = make_model(scenario)
                tract_hub.patch(model, LAM, target="0", exact=scenario.mode == "exact")
                results[scenario.key] = train_step(model, wrap(model, scenario, world), scenario, world, rank)
            except Exception:  # reported to the test, which fails with the traceback
                results[scenario.key] = {"error": traceback.format_exc()}
                raise
    finally:
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.destroy_process_group()
