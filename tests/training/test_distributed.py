"""Data parallel training: two gloo processes on loopback, one run directory written by rank 0, and the same
weights as one process with the same global batch (TrAct in exact mode; a model without batch norm, whose
statistics would otherwise differ per rank).

The processes are forked from the test (as ``torchrun`` would start them, with RANK / WORLD_SIZE / MASTER_ADDR
in their environment), which spares each of them the imports. ``torchrun --nproc_per_node=2 -m tract_hub.cli
train`` runs the same ``train`` through the command line.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from tract_hub.training import train

from .builders import quick_recipe

#: A one-block ViT on the 8x8 digits: LayerNorm only, so the update does not depend on the split of the batch.
VIT = (
    "model.architecture=timm:vit_tiny_patch16_224",
    "model.kwargs={in_chans: 1, img_size: 8, patch_size: 2, depth: 1, embed_dim: 32, num_heads: 2}",
    "target=patch_embed.proj",
    "train.epochs=1",
    "train.ema={decay: 0.5}",  # the EMA of the weights too: updated on every rank, evaluated over the ranks
)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(rank: int, run_dir: str, port: int) -> None:
    torch.set_num_threads(1)  # as DataLoader workers do after a fork
    os.environ.update(
        {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": str(port),
        }
    )
    result = train(quick_recipe(*VIT), run_dir, device="cpu")
    assert result.is_main == (rank == 0)


@pytest.mark.slow
@pytest.mark.distributed
def test_two_gloo_processes_train_one_run(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    mp.start_processes(_rank_main, args=(str(run_dir), _free_port()), nprocs=2, start_method="fork", join=True)

    environment = json.loads((run_dir / "environment.json").read_text())
    assert environment["world_size"] == 2 and environment["micro_batch_per_rank"] == 32
    assert environment["tract_exact"]["enabled"] is True
    assert "data parallel over 2 ranks" in environment["tract_exact"]["reason"]
    rows = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1  # rank 0 alone writes
    row = json.loads(rows[0])
    assert row["tract"] == {"lam": 0.1, "exact": True} and 0.0 <= row["top1"] <= 1.0
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["exact"] is True and summary["epochs"] == 1
    assert (run_dir / "checkpoints" / "last" / "model.safetensors").is_file()

    # the same global batches on one process, whole and in two micro-batches: the same weights (to ~1e-7; the
    # per-backward TrAct of each micro-batch would be off by ~3e-5 here)
    two_ranks = load_file(str(run_dir / "checkpoints" / "last" / "model.safetensors"))
    two_ranks_ema = load_file(str(run_dir / "checkpoints" / "last" / "model_ema.safetensors"))
    for name, overrides in (("one", ()), ("accumulated", ("train.accum_steps=2",))):
        single = train(quick_recipe(*VIT, *overrides), tmp_path / name, device="cpu").model.state_dict()
        for key, value in single.items():
            torch.testing.assert_close(two_ranks[key], value, rtol=1e-5, atol=1e-6, msg=f"{name}: {key}")
        single_ema = load_file(str(tmp_path / name / "checkpoints" / "last" / "model_ema.safetensors"))
        for key, value in single_ema.items():
            torch.testing.assert_close(two_ranks_ema[key], value, rtol=1e-5, atol=1e-6, msg=f"{name} EMA: {key}")
    one_process = json.loads((tmp_path / "one" / "metrics.jsonl").read_text())
    assert abs(row["ema_top1"] - one_process["ema_top1"]) <= 1 / 128  # weights equal to ~1e-7: at most one image
