"""Code run inside each spawned torch.distributed process (gloo on loopback)."""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

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


def run_jobs(rank: int, world: int, rendezvous: str, out_dir: str, jobs: dict[str, Callable[[int, int], dict]]) -> None:
    """Entry point of a spawned gloo process: every job ``key -> job(rank, world)`` in turn, the results (or the
    traceback of the job that raised) saved to ``out_dir/rank<r>.pt`` for the test."""
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{rendezvous}", rank=rank, world_size=world)
    results: dict[str, dict] = {}
    try:
        for key, job in jobs.items():
            try:
                results[key] = job(rank, world)
            except Exception:  # reported to the test, which fails with the traceback
                results[key] = {"error": traceback.format_exc()}
                raise
    finally:
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.destroy_process_group()


def spawn(jobs: dict[str, Callable[[int, int], dict]], world: int, tmp: Path) -> list[dict]:
    """Run ``jobs`` on ``world`` forked gloo processes; each rank's results.

    fork: the ranks reuse the parent's imports (each spawned process would import torch again); they run
    single-threaded, so no OpenMP pool is used after the fork.
    """
    mp.start_processes(
        run_jobs, args=(world, str(tmp / "rendezvous"), str(tmp), jobs), nprocs=world, start_method="fork"
    )
    return [torch.load(tmp / f"rank{rank}.pt", weights_only=False) for rank in range(world)]


def scenario_job(scenario: Scenario) -> Callable[[int, int], dict]:
    """One optimizer step of ``scenario`` on this rank (its model patched, then wrapped)."""

    def job(rank: int, world: int) -> dict:
        model = make_model(scenario)
        tract_hub.patch(model, LAM, target="0", exact=scenario.mode == "exact")
        return train_step(model, wrap(model, scenario, world), scenario, world, rank)

    return job
