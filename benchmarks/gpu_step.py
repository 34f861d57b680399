"""One-shot GPU benchmark: full training-step time, peak memory and host-device syncs of TrAct vs vanilla.

Built to survive one short run on a lent GPU:

* each configuration (model, batch, precision, memory format, eager or ``torch.compile``) times the variants
  vanilla, TrAct per-backward, TrAct exact (and the paper's ``torch_tract`` when importable) on the same batch,
  every variant once per round in a shuffled order, after warm-up rounds (compilation happens there), medians;
  one step is zero_grad, forward, cross-entropy, backward and an SGD step, timed with CUDA events;
* a variant that raises (``torch_tract`` under bf16 autocast, an out-of-memory) is recorded with its error and
  dropped; the others go on; a configuration that fails as a whole is recorded and the next one starts;
* the results are rewritten to the JSON file after every configuration (``complete`` turns true at the end);
* no configuration starts after ``--budget-s`` seconds (the skipped ones are listed).

Recorded per configuration: which covariance summation the engine chose for the first layer's input (float64 on
data-center GPUs, shifted float32 on the others; ``tract_hub.engine.summation_for``), whether cuDNN may use TF32
(which sets the error of PyTorch's own weight gradient), peak memory (``torch.cuda.max_memory_allocated`` over one
step after a reset) and host-device syncs (warnings of ``torch.cuda.set_sync_debug_mode("warn")`` in one step).

The configurations: the paper's CIFAR ViT at batch 128 in float32 (the row of the paper's 9.7% step overhead on an
RTX 4090; the paper's CIFAR ViT code, omihub777/ViT-CIFAR, defaults to 16-bit mixed precision, but torch_tract's
convolution fails under autocast, and the paper does not state the precision it timed) and in bf16 autocast, the
CIFAR ResNet-18 at batch 128 in float32 (the paper's CIFAR script trains in float32), timm's ResNet-50 and ViT-S/16
at 224, batch 128, bf16 autocast, channels_last.

    python benchmarks/gpu_step.py --no-compile     # eager only: about 3 minutes on an H100 (estimate, not run yet)
    python benchmarks/gpu_step.py                  # eager and compiled, within --budget-s (default 420 s)
    python benchmarks/gpu_step.py --smoke          # CPU, tiny models: every code path of the script, seconds
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import random
import statistics
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from step_models import MODELS
from torch import nn

import tract_hub


@dataclass(frozen=True)
class Config:
    model: str
    batch: int
    precision: str  # "fp32" or "bf16" (autocast)
    channels_last: bool


FULL = [
    Config("cifar-vit", 128, "fp32", False),
    Config("cifar-vit", 128, "bf16", False),
    Config("cifar-resnet18", 128, "fp32", False),
    Config("resnet50", 128, "bf16", True),
    Config("vit-s16", 128, "bf16", True),
]
SMOKE = [Config("tiny-vit", 4, "fp32", False), Config("tiny-resnet", 4, "bf16", False)]
TARGETS = {"cifar-vit": 0.02, "resnet50": 0.005, "vit-s16": 0.005}  # step-time overhead TrAct may add
MEMORY_TARGET = 1.05
#: Smoke mode only: exit abruptly after this many configurations (the tests prove the incremental writes with it).
ABORT_AFTER = "TRACT_HUB_GPU_STEP_ABORT_AFTER"


@dataclass
class Row:
    model: str
    batch: int
    precision: str
    compiled: bool
    variant: str
    median_ms: float
    overhead_vs_vanilla: float | None
    peak_memory_bytes: int | None
    memory_vs_vanilla: float | None
    syncs_per_step: int | None


class Failing(nn.Module):
    """Smoke mode's stand-in for a variant that raises in its step (as torch_tract does under bf16 autocast)."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("a variant that fails (smoke test of the guard)")


def variants(build: Callable[[], nn.Module], first_layer: str, smoke: bool) -> dict[str, Callable[[], nn.Module]]:
    """Builders of every variant (built lazily, so that a failing build is that variant's failure only)."""
    torch.manual_seed(0)
    base = build()

    def patched(exact: bool) -> Callable[[], nn.Module]:
        return lambda: tract_hub.patch(copy.deepcopy(base), 0.1, target=first_layer, exact=exact)

    def reference() -> nn.Module:
        import torch_tract  # the paper's reference implementation: a comparison, never a dependency

        model = copy.deepcopy(base)
        model.set_submodule(first_layer, torch_tract.TrAct(model.get_submodule(first_layer), l=0.1))
        return model

    found: dict[str, Callable[[], nn.Module]] = {
        "vanilla": lambda: base,
        "per_backward": patched(False),
        "exact": patched(True),
    }
    with contextlib.suppress(ImportError):
        import torch_tract  # noqa: F401

        found["torch_tract"] = reference
    if smoke:
        found["failing"] = Failing
    return found


class Stepper:
    """One training step of one variant, timed on the device (CUDA events) or the host (smoke mode)."""

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, bf16: bool, compiled: bool) -> None:
        self.model = torch.compile(model) if compiled else model
        self.optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        self.x, self.y, self.bf16 = x, y, bf16
        self.cuda = x.is_cuda

    def run(self) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        context = torch.autocast(self.x.device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with context:
            loss = F.cross_entropy(self.model(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def timed(self) -> float:
        if not self.cuda:
            start = time.perf_counter()
            self.run()
            return time.perf_counter() - start
        begin, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        begin.record()
        self.run()
        end.record()
        end.synchronize()
        return begin.elapsed_time(end) / 1e3

    def peak_memory(self) -> int | None:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        self.run()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated()

    def syncs(self) -> int | None:
        if not self.cuda:
            return None
        torch.cuda.synchronize()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                self.run()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return sum("synchroniz" in str(w.message) for w in caught)


def error_text(exc: BaseException) -> str:
    lines = traceback.format_exception_only(type(exc), exc)
    return "".join(lines).strip().splitlines()[0][:300]


def guarded_medians(
    steppers: dict[str, Stepper], rounds: int, warmup: int, failures: dict[str, str], seed: int = 0
) -> dict[str, float]:
    """Median seconds per variant over ``rounds`` shuffled rounds after ``warmup`` untimed ones; a variant that
    raises is recorded in ``failures`` and dropped, the others go on."""
    alive, rng = list(steppers), random.Random(seed)
    times: dict[str, list[float]] = {name: [] for name in steppers}
    for index in range(warmup + rounds):
        rng.shuffle(alive)
        for name in list(alive):
            try:
                elapsed = steppers[name].timed()
            except Exception as exc:  # recorded, and the run goes on without this variant
                failures[name] = error_text(exc)
                alive.remove(name)
                continue
            if index >= warmup:
                times[name].append(elapsed)
    return {name: statistics.median(times[name]) for name in alive if times[name]}


def summation_of(model: nn.Module, first_layer: str, x: torch.Tensor) -> str:
    """The covariance summation the engine chooses for the first layer's input on this device."""
    from tract_hub.engine import LayerGeometry, summation_for

    layer = model.get_submodule(first_layer)
    geometry = LayerGeometry.for_conv(layer.weight, layer.stride, layer.padding, layer.dilation, layer.groups)
    return str(summation_for(x, geometry, lam=0.1).dtype).removeprefix("torch.")


def measure(config: Config, compiled: bool, device: str, rounds: int, smoke: bool) -> dict:
    """Every variant of one configuration: rows for those that ran, errors for those that raised."""
    spec = MODELS[config.model]
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(config.batch, 3, spec.image_size, spec.image_size, generator=generator)
    x = x.to(device).contiguous(memory_format=memory_format)
    y = torch.randint(0, 10, (config.batch,), generator=generator).to(device)
    failures: dict[str, str] = {}
    steppers: dict[str, Stepper] = {}
    builders = variants(spec.build, spec.first_layer, smoke)
    for name, builder in builders.items():
        try:
            model = builder().to(device, memory_format=memory_format)
            steppers[name] = Stepper(model, x, y, config.precision == "bf16", compiled)
        except Exception as exc:
            failures[name] = error_text(exc)
    summation = summation_of(builders["vanilla"](), spec.first_layer, x)
    medians = guarded_medians(steppers, rounds, warmup=3, failures=failures)
    memory, syncs = {}, {}
    for name in medians:
        try:
            memory[name], syncs[name] = steppers[name].peak_memory(), steppers[name].syncs()
        except Exception as exc:
            failures[name] = error_text(exc)
    rows = []
    base_time, base_memory = medians.get("vanilla"), memory.get("vanilla")
    for name, median in medians.items():
        if name not in memory:
            continue
        rows.append(
            Row(
                model=config.model,
                batch=config.batch,
                precision=config.precision,
                compiled=compiled,
                variant=name,
                median_ms=median * 1e3,
                overhead_vs_vanilla=median / base_time - 1 if base_time else None,
                peak_memory_bytes=memory[name],
                memory_vs_vanilla=memory[name] / base_memory if memory[name] and base_memory else None,
                syncs_per_step=syncs[name],
            )
        )
    steppers.clear()
    if device == "cuda":
        torch.cuda.empty_cache()
    return {
        "config": asdict(config),
        "compiled": compiled,
        "summation": summation,
        "rows": [asdict(r) for r in rows],
        "failures": failures,
    }


def markdown(rows: list[dict]) -> str:
    lines = [
        "| model | batch | precision | compile | variant | step ms | overhead | peak memory (x vanilla) | syncs |",
        "|---|---:|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        memory, ratio = r["peak_memory_bytes"], r["memory_vs_vanilla"]
        memory = f"{memory / 2**20:.0f} MiB ({ratio:.3f})" if ratio else "-"
        overhead = "-" if r["overhead_vs_vanilla"] is None else f"{r['overhead_vs_vanilla'] * 100:+.2f}%"
        syncs = "-" if r["syncs_per_step"] is None else str(r["syncs_per_step"])
        lines.append(
            f"| {MODELS[r['model']].name} | {r['batch']} | {r['precision']} | {'yes' if r['compiled'] else 'no'} | "
            f"{r['variant']} | {r['median_ms']:.2f} | {overhead} | {memory} | {syncs} |"
        )
    return "\n".join(lines)


def target_checks(rows: list[dict]) -> list[str]:
    checks = []
    for r in rows:
        overhead, memory = r["overhead_vs_vanilla"], r["memory_vs_vanilla"]
        if r["variant"] not in ("per_backward", "exact") or r["model"] not in TARGETS or overhead is None:
            continue
        target = TARGETS[r["model"]]
        ok = overhead <= target and (memory is None or memory <= MEMORY_TARGET)
        checks.append(
            f"{'PASS' if ok else 'MISS'} {r['model']} {r['precision']} {'compiled' if r['compiled'] else 'eager'} "
            f"{r['variant']}: overhead {overhead * 100:+.2f}% (target <= {target * 100:.1f}%), memory "
            f"{'-' if memory is None else f'{memory:.3f}x'} (target <= {MEMORY_TARGET}x)"
        )
    return checks


def device_record(device: str) -> dict:
    if device != "cuda":
        return {"device": platform.processor() or platform.machine() or "cpu"}
    return {
        "device": torch.cuda.get_device_name(),
        "capability": list(torch.cuda.get_device_capability()),
        "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
        "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="CPU, tiny models, eager only: checks the script")
    parser.add_argument("--rounds", type=int, default=None, help="timed rounds (default 10; smoke 2)")
    parser.add_argument("--no-compile", action="store_true", help="eager only")
    parser.add_argument("--budget-s", type=float, default=420.0, help="start no configuration after this many s")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "gpu_step.json")
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA device: run on a GPU machine, or use --smoke to check the script on a CPU")
    device = "cpu" if args.smoke else "cuda"
    rounds = args.rounds or (2 if args.smoke else 10)
    compile_modes = [False] if (args.smoke or args.no_compile) else [False, True]
    if args.smoke:
        torch.set_num_threads(1)  # tiny models: threads only contend (100x slower steps on a loaded machine)
    else:
        torch.backends.cudnn.benchmark = True
    abort_after = int(os.environ.get(ABORT_AFTER, "0")) if args.smoke else 0
    started = time.monotonic()
    record = {
        **device_record(device),
        "torch": torch.__version__,
        "smoke": args.smoke,
        "rounds": rounds,
        "complete": False,
        "configurations": [],
        "skipped": [],
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for compiled in compile_modes:
        for config in SMOKE if args.smoke else FULL:
            if time.monotonic() - started > args.budget_s:
                record["skipped"].append(
                    {**asdict(config), "compiled": compiled, "reason": f"budget {args.budget_s:.0f} s"}
                )
                continue
            begin = time.monotonic()
            try:
                result = measure(config, compiled, device, rounds, args.smoke)
            except Exception as exc:  # the configuration as a whole: recorded, and the next one starts
                result = {"config": asdict(config), "compiled": compiled, "rows": [], "error": error_text(exc)}
            result["seconds"] = time.monotonic() - begin
            record["configurations"].append(result)
            record["seconds"] = time.monotonic() - started
            args.json.write_text(json.dumps(record, indent=2, sort_keys=True))
            print(markdown(result["rows"]), flush=True)
            for name, error in result.get("failures", {}).items():
                print(f"  {name} failed: {error}", flush=True)
            if result.get("error"):
                print(f"  configuration failed: {result['error']}", flush=True)
            if abort_after and len(record["configurations"]) >= abort_after:
                os._exit(3)
    rows = [row for result in record["configurations"] for row in result["rows"]]
    record["target_checks"] = target_checks(rows)
    record["complete"] = True
    record["seconds"] = time.monotonic() - started
    args.json.write_text(json.dumps(record, indent=2, sort_keys=True))
    print("\n" + markdown(rows))
    print("\n".join(record["target_checks"]))
    for skip in record["skipped"]:
        how = "compiled" if skip["compiled"] else "eager"
        print(f"skipped {skip['model']} {skip['precision']} ({how}): {skip['reason']}")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
