"""The trainer: one recipe, one process or ``torchrun`` ranks, into one run directory.

Per optimizer step: the per-rank batch is split into ``train.accum_steps`` micro-batches (DDP synchronizes
gradients on the last one only); after the last backward the first layer's ``.grad`` already holds exact TrAct's
gradient of the whole step; then the GradScaler unscales, gradients are clipped and the optimizer(s) step. TrAct
runs in exact mode (the library's default), so the update does not depend on how the batch is split
(``accum_steps > 1`` or several ranks); ``environment.json`` and every metrics row record it.

Reproducibility: the data order comes from a sampler seeded by ``(train.seed, epoch)``, and the RNGs that drive
augmentation are re-seeded from ``(train.seed, epoch, rank)`` at the start of each epoch, so a run resumed from
its last checkpoint draws the same numbers as an uninterrupted one (on CPU the weights are bit-identical).
``--resume`` may also lengthen the run (see :mod:`~tract_hub.training.resume`).

Reporting (:class:`~tract_hub.training.sinks.ReportOptions`, not part of the recipe): a log line every
``log_interval`` optimizer steps (loss, lr, images/s, data time, ETA, peak memory), a tqdm bar on terminals,
one line per epoch (accuracies in %), and besides ``metrics.jsonl`` a ``summary.csv``, TensorBoard events
(when installed) and Weights & Biases (when asked for). With ``train.ema`` the EMA of the weights
(:mod:`~tract_hub.training.ema`) is evaluated after the trained weights (``ema_top1``, ...) and saved beside them.

Example (a tiny version of the demo recipe, about a second on a CPU):
    >>> import tempfile
    >>> from tract_hub.training import train
    >>> from tract_hub.training.demo_recipe import demo_recipe
    >>> small = ["train.epochs=1", "data.digits.size=8", "model.kwargs.width=4", "data.max_train_samples=128"]
    >>> result = train(demo_recipe(small), tempfile.mkdtemp() + "/run", device="cpu")
    >>> sorted(result.summary.final), result.summary.first_layers
    (['top1', 'top5', 'train_loss', 'val_loss'], ('conv1',))
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..artifacts.curves import Curve, plot_curves
from ..artifacts.run_dir import BEST, LAST, ModelRecord, RunDirectory, RunSummary
from ..errors import DataError, InvalidArgumentError, RecipeError
from . import checkpoint
from .data import DataSplits, build_datasets
from .distributed import DistContext, all_reduce_sum, barrier, setup_distributed, teardown_distributed
from .ema import WeightEma
from .environment import environment_record
from .evaluation import ShardSampler, autocast, to_device
from .modeling import BuiltModel, build_model, install_tract
from .objective import build_objective
from .optim import build_optimizers, build_schedulers
from .progress import StepMeter, bar_and_logs, format_duration, format_scores, plural, progress_wanted
from .recipe import Recipe, dump_recipe, recipe_to_data
from .resume import (
    Change,
    ResumePoint,
    check_run_directory,
    continue_schedule,
    restore_training,
    resume_history,
    training_state,
)
from .sinks import ReportOptions, Sinks, check_available, open_sinks

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What :func:`train` returns: the run directory, its summary, and the trained model (rank 0's)."""

    run_dir: Path
    summary: RunSummary
    model: nn.Module
    is_main: bool = True  # False on the other ranks under torchrun (their summary has no metrics)


def default_run_dir(recipe: Recipe, root: str | Path = "runs") -> Path:
    """``runs/<recipe name>-<tract|vanilla>``."""
    return Path(root) / f"{recipe.name}-{recipe.variant}"


def seed_everything(*parts: int) -> None:
    """Seed Python, numpy and torch from a tuple of integers."""
    seed = 0
    for part in parts:
        seed = (seed * 1_000_003 + int(part)) % 2**32
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _exact_mode(recipe: Recipe, world_size: int) -> tuple[bool, str]:
    if recipe.lam is None:
        return False, "vanilla run (lam=null): TrAct is not installed"
    split = []
    if recipe.train.accum_steps > 1:
        split.append(f"gradient accumulation (train.accum_steps={recipe.train.accum_steps})")
    if world_size > 1:
        split.append(f"data parallel over {world_size} ranks")
    how = " and ".join(split) if split else "one batch per step on one process"
    return True, f"exact mode (tract_hub.patch's default: TrAct of each optimizer step's whole batch); {how}"


class Trainer:
    """Everything one run needs, built from a recipe; :meth:`run` trains it.

    ``__init__`` runs the build steps below in the one order that works; each step reads what the steps before
    it built.
    """

    def __init__(
        self,
        recipe: Recipe,
        run_dir: RunDirectory,
        context: DistContext,
        show_progress: bool | None,
        report: ReportOptions | None = None,
    ):
        self.recipe, self.run_dir, self.context = recipe, run_dir, context
        self.config = recipe.train
        self.device = context.device
        self._configure(show_progress, report)  # reporting, hardware and batch checks, determinism, exact mode
        self._build_data()  # the data sets and the objective (the model's number of classes)
        self._build_model()  # on its device and memory format
        self._build_ema()  # before the patch: the EMA copies the model unpatched
        self._install_tract()  # before the optimizers: a first layer the patch unfroze must be in them
        self._build_optimizers()
        self._build_loaders()  # before the schedulers, which count optimizer steps per epoch
        self._build_schedulers()
        self._wrap_model()  # DDP, then torch.compile, around the patched model
        self._start_counters()  # step, best scores, learning rate, epoch times

    # -- build steps, in the order of __init__ ---------------------------------------------------------------
    def _configure(self, show_progress: bool | None, report: ReportOptions | None) -> None:
        context = self.context
        self.show_progress = context.is_main and (progress_wanted() if show_progress is None else show_progress)
        self.report = report or ReportOptions()
        self.sinks: Sinks | None = None
        if context.is_main:
            check_available(self.report)
        self._check_hardware()
        self.rank_batch = self.config.batch_size // context.world_size
        self.exact, self.exact_reason = _exact_mode(self.recipe, context.world_size)
        if self.config.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not self.config.deterministic

    def _build_data(self) -> None:
        seed_everything(self.config.seed)
        self.data: DataSplits = self._build_datasets()
        self.objective = build_objective(self.recipe.data.dataset, self.config, self.data.num_classes)
        self.task = self.objective.task

    def _build_model(self) -> None:
        self.built: BuiltModel = build_model(self.recipe, self.data.num_classes)
        self.model = self.built.model.to(self.device)
        if self.config.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)

    def _build_ema(self) -> None:
        self.ema = WeightEma(self.model, self.config.ema) if self.config.ema is not None else None

    def _install_tract(self) -> None:
        self.first_layers = install_tract(self.model, self.recipe, exact=self.exact)

    def _build_optimizers(self) -> None:
        self.optimizers = build_optimizers(self.model, self.recipe.optimizer, self.first_layers)

    def _build_loaders(self) -> None:
        self.train_loader, self.sampler = self._train_loader()
        self.val_loader = self._val_loader()
        self.steps_per_epoch = len(self.train_loader)
        if self.steps_per_epoch == 0:
            raise DataError(
                f"{len(self.data.train)} training samples make no batch of {self.rank_batch} per rank with "
                "train.drop_last=true; lower train.batch_size or set train.drop_last=false"
            )

    def _build_schedulers(self) -> None:
        total_steps = self.config.epochs * self.steps_per_epoch
        self.schedulers = build_schedulers(self.optimizers, self.recipe.schedule, total_steps, self.steps_per_epoch)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.config.precision == "fp16")

    def _wrap_model(self) -> None:
        self.parallel_model: nn.Module = self.model
        if self.context.distributed:
            device_ids = [self.device.index] if self.device.type == "cuda" else None
            self.parallel_model = nn.parallel.DistributedDataParallel(self.model, device_ids=device_ids)
        self.forward_model: nn.Module = (
            torch.compile(self.parallel_model) if self.config.compile else self.parallel_model
        )

    def _start_counters(self) -> None:
        self.global_step = 0
        self.diverged_at: int | None = None
        self.best: dict[str, Any] = {}
        self.last_lr = self.optimizers[0].param_groups[0]["lr"]
        self.epoch_times: list[float] = []  # wall time of each epoch trained by this process (train + eval)
        self.resume_changes: list[Change] = []

    # -- what the build steps use --------------------------------------------------------------------------
    def _check_hardware(self) -> None:
        config, world = self.config, self.context.world_size
        if config.precision == "fp16" and self.device.type != "cuda":
            raise InvalidArgumentError(
                "train.precision='fp16' needs a CUDA device (GradScaler); on CPU use --set train.precision=bf16"
            )
        if config.batch_size % world or (config.batch_size // world) % config.accum_steps:
            raise RecipeError(
                f"train.batch_size={config.batch_size} does not split into {world} ranks x "
                f"{config.accum_steps} micro-batches (train.accum_steps); choose a multiple of "
                f"{world * config.accum_steps}"
            )

    def _build_datasets(self) -> DataSplits:
        """The data sets; with ``data.download`` under several ranks, rank 0 downloads before the others look."""
        if not (self.recipe.data.download and self.context.distributed):
            return build_datasets(self.recipe.data)
        if not self.context.is_main:
            barrier(self.context)
        data = build_datasets(self.recipe.data)
        if self.context.is_main:
            barrier(self.context)
        return data

    def _workers(self) -> int:
        if self.config.workers is not None:
            return self.config.workers
        if self.device.type != "cuda" or isinstance(self.data.train, torch.utils.data.TensorDataset):
            return 0
        local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        return max(1, min(8, (os.cpu_count() or 1) // local))

    def _loader_options(self) -> dict[str, Any]:
        workers = self._workers()
        options: dict[str, Any] = {"num_workers": workers, "pin_memory": self.device.type == "cuda"}
        if self.data.collate is not None:
            options["collate_fn"] = self.data.collate
        if workers:
            options["persistent_workers"] = False
        return options

    def _train_loader(self) -> tuple[DataLoader, DistributedSampler]:
        sampler = DistributedSampler(
            self.data.train,
            num_replicas=self.context.world_size,
            rank=self.context.rank,
            shuffle=True,
            seed=self.config.seed,
        )
        loader = DataLoader(
            self.data.train,
            batch_size=self.rank_batch,
            sampler=sampler,
            drop_last=self.config.drop_last,
            **self._loader_options(),
        )
        return loader, sampler

    def _val_loader(self) -> DataLoader:
        size = self.config.eval_batch_size or self.rank_batch // self.config.accum_steps
        sampler = ShardSampler(len(self.data.val), self.context.rank, self.context.world_size)
        return DataLoader(self.data.val, batch_size=size, sampler=sampler, **self._loader_options())

    # -- one optimizer step --------------------------------------------------------------------------------
    def _micro_batches(self, size: int) -> list[torch.Tensor]:
        return [part for part in torch.arange(size).tensor_split(self.config.accum_steps) if len(part)]

    def _train_step(self, inputs: Any, targets: Any) -> torch.Tensor:
        """One optimizer step on this rank's batch; returns the summed loss (loss x samples) as a device tensor,
        so that the step queues on the GPU without waiting for it (the meter reads it at its log interval)."""
        inputs, targets = self.objective.prepare(inputs, targets)
        size = len(inputs)
        parts = self._micro_batches(size)
        total = torch.zeros((), device=self.device)
        for index, part in enumerate(parts):
            last = index == len(parts) - 1
            sync = self.parallel_model.no_sync() if self.context.distributed and not last else contextlib.nullcontext()
            micro_inputs, micro_targets = self.objective.take(inputs, targets, part)
            with sync:
                with autocast(self.config.precision, self.device):
                    loss = self.objective.loss(self.forward_model, micro_inputs, micro_targets)
                self.scaler.scale(loss * (len(part) / size)).backward()
            total += loss.detach().float() * len(part)
        for optimizer in self.optimizers:
            self.scaler.unscale_(optimizer)
        if self.config.grad_clip is not None:
            nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.grad is not None], self.config.grad_clip)
        for optimizer in self.optimizers:
            self.scaler.step(optimizer)
        self.scaler.update()
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        self.last_lr = self.optimizers[0].param_groups[0]["lr"]
        for scheduler in self.schedulers:
            scheduler.step()
        self.global_step += 1
        if self.ema is not None:
            self.ema.update(self.model, self.global_step)
        return total

    def _train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        self.sampler.set_epoch(epoch)
        seed_everything(self.config.seed, epoch, self.context.rank)
        channels_last = self.config.channels_last and self.objective.channels_last
        start = time.perf_counter()
        desc = f"epoch {epoch + 1}/{self.config.epochs}"
        with bar_and_logs(self.steps_per_epoch, desc, self.show_progress) as bar:
            meter = StepMeter(
                epoch=epoch + 1,
                epochs=self.config.epochs,
                steps=self.steps_per_epoch,
                interval=self.report.log_interval,
                world_size=self.context.world_size,
                device=self.device,
                bar=bar,
                on_report=self._report_step if self.context.is_main else None,
            )
            waited = time.perf_counter()
            for inputs, targets in self.train_loader:
                data_time = time.perf_counter() - waited
                inputs = to_device(inputs, self.device, channels_last)
                targets = to_device(targets, self.device)
                step_loss = self._train_step(inputs, targets)
                meter.step(loss_sum=step_loss, samples=len(inputs), lr=self.last_lr, data_time=data_time)
                waited = time.perf_counter()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - start
        loss_sum, samples = all_reduce_sum([float(meter.loss_sum), meter.samples], self.context)
        return {
            "train_loss": loss_sum / max(samples, 1.0),
            "epoch_time_s": elapsed,
            "images_per_s": samples / elapsed if elapsed > 0 else float("nan"),
        }

    def _report_step(self, values: dict[str, float]) -> None:
        if self.sinks is not None:
            self.sinks.step(self.global_step, values)

    # -- evaluation ----------------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, float | None]:
        """Validation metrics of the current weights and, with ``train.ema``, of their EMA (keys ``ema_*``);
        every rank takes part."""
        options = {"precision": self.config.precision, "show_progress": self.show_progress}
        scores = self.objective.evaluate(
            self.model, self.val_loader, self.context, channels_last=self.config.channels_last, **options
        )
        if self.ema is not None:
            ema_scores = self.objective.evaluate(
                self.ema.module, self.val_loader, self.context, channels_last=self.config.channels_last, **options
            )
            scores.update({f"ema_{key}": value for key, value in ema_scores.items()})
        return scores

    @property
    def eval_keys(self) -> tuple[str, ...]:
        """The keys one evaluation adds to a metrics row."""
        keys = self.task.eval_keys
        return keys + tuple(f"ema_{key}" for key in keys) if self.ema is not None else keys

    # -- state ---------------------------------------------------------------------------------------------
    def summary(self, epochs_done: int, rows: Sequence[dict[str, Any]]) -> RunSummary:
        metric = self.task.main_metric
        evaluated = [row for row in rows if row.get(metric) is not None]
        keys = self.task.summary_keys
        if self.ema is not None:
            keys += tuple(f"ema_{key}" for key in self.task.eval_keys)
        final = {k: evaluated[-1].get(k) for k in keys} if evaluated else {}
        model = self.recipe.model
        return RunSummary(
            name=self.run_dir.path.name,
            recipe_name=self.recipe.name,
            model=ModelRecord(
                self.built.architecture,
                dict(self.built.kwargs),
                detector=model.detector if model.detector != "none" else None,
                input_norm=model.input_norm if model.input_norm != "none" else None,
            ),
            dataset=self.recipe.data.dataset,
            num_classes=self.data.num_classes,
            lam=self.recipe.lam,
            exact=self.exact,
            first_layers=tuple(self.first_layers),
            epochs=epochs_done,
            complete=epochs_done >= self.config.epochs,
            diverged_at_epoch=self.diverged_at,
            final=final,
            best=dict(self.best),
        )

    # -- the run -------------------------------------------------------------------------------------------
    def _prepare_directory(self, resume: bool) -> int:
        """Check the run directory against the recipe; when resuming, continue from its last checkpoint.
        Returns the epochs already trained."""
        run_dir = self.run_dir
        self.resume_changes = check_run_directory(run_dir, self.recipe, resume=resume)
        found = checkpoint.checkpoint_directory(run_dir.checkpoint(LAST)) if resume else None
        barrier(self.context)  # every rank has looked at the directory before rank 0 writes into it
        start = 0
        if found is not None:
            start = self._continue_from(found)
        elif resume:
            logger.warning("--resume: %s has no checkpoint yet; starting from the beginning", run_dir.path)
        if self.context.is_main:
            self._write_start(start, dump_recipe(self.recipe))
        barrier(self.context)
        return start

    def _continue_from(self, directory: Path) -> int:
        """Restore a checkpoint (and the schedule of a changed run length); returns the epochs it completed."""
        point = restore_training(
            directory,
            model=self.model,
            ema=self.ema,
            optimizers=self.optimizers,
            schedulers=self.schedulers,
            scaler=self.scaler,
        )
        self.global_step, self.best = point.global_step, point.best
        continue_schedule(self.resume_changes, point, self.recipe, self.optimizers, self.schedulers, self.run_dir.path)
        if point.epoch >= self.config.epochs:
            logger.warning(
                "--resume: %s already finished its %s; nothing to train (--set train.epochs=N trains longer)",
                self.run_dir.path,
                plural(point.epoch, "epoch"),
            )
        else:
            logger.info("resuming %s after epoch %d", self.run_dir.path, point.epoch)
        return point.epoch

    def _write_start(self, start: int, recipe_text: str) -> None:
        """Before the first epoch (rank 0): metrics rows of the epochs to train dropped, recipe and environment."""
        run_dir = self.run_dir
        if start == 0 and run_dir.metrics_path.exists():
            run_dir.metrics_path.unlink()
        elif start:
            run_dir.truncate_metrics(start)
        run_dir.write_recipe(recipe_text)
        extra = {
            "channels_last": self.config.channels_last,
            "compile": self.config.compile,
            "accum_steps": self.config.accum_steps,
            "micro_batch_per_rank": self.rank_batch // self.config.accum_steps,
            "resumed_after_epoch": start or None,
            "resume_changes": resume_history(self.run_dir.environment_path, start, self.resume_changes),
        }
        environment = environment_record(
            device=self.device,
            world_size=self.context.world_size,
            precision=self.config.precision,
            exact=self.exact,
            exact_reason=self.exact_reason,
            extra=extra,
        )
        run_dir.write_environment(environment)

    def run(self, resume: bool = False) -> TrainResult:
        start = self._prepare_directory(resume)
        logger.info(
            "training %s (%s) for %s: %d steps/epoch, batch %d = %s x %s of %d images",
            self.recipe.name,
            f"TrAct lam={self.recipe.lam}" if self.recipe.lam is not None else "vanilla",
            plural(self.config.epochs, "epoch"),
            self.steps_per_epoch,
            self.config.batch_size,
            plural(self.context.world_size, "rank"),
            plural(self.config.accum_steps, "micro-batch", "micro-batches"),
            self.rank_batch // self.config.accum_steps,
        )
        if self.context.is_main:
            config = recipe_to_data(self.recipe)
            self.sinks = open_sinks(self.run_dir, self.report, config=config, start_step=self.global_step)
        try:
            for epoch in range(start, self.config.epochs):
                if not self._epoch(epoch):
                    break
            return self._finish()
        finally:
            if self.sinks is not None:
                self.sinks.close()
                self.sinks = None

    def _epoch(self, epoch: int) -> bool:
        """Train, evaluate and record one epoch; False when training diverged (a non-finite loss)."""
        metric = self.task.main_metric
        started = time.perf_counter()
        row: dict[str, Any] = {"epoch": epoch + 1, **self._train_epoch(epoch), "lr": self.last_lr}
        evaluated = (epoch + 1) % self.config.eval_every == 0 or epoch + 1 == self.config.epochs
        scores = self.evaluate() if evaluated else {}
        row.update({key: scores.get(key) for key in self.eval_keys})
        row["tract"] = {"lam": self.recipe.lam, "exact": self.exact}
        improved = evaluated and (not self.best or scores[metric] > self.best[metric])
        if improved:
            self.best = {"epoch": epoch + 1, **{k: v for k, v in scores.items() if v is not None}}
        if self.context.is_main:
            self._write_epoch(epoch + 1, row, improved)
            if self.sinks is not None:
                self.sinks.epoch(epoch + 1, self.global_step, self.run_dir.read_metrics())
        barrier(self.context)
        self.epoch_times.append(time.perf_counter() - started)
        if not math.isfinite(row["train_loss"]):
            self.diverged_at = epoch + 1
            logger.error(
                "training diverged: train_loss=%s in epoch %d; stopping (no checkpoint of this epoch). Lower "
                "optimizer.lr or set train.grad_clip",
                row["train_loss"],
                epoch + 1,
            )
            return False
        shown = "validation " + format_scores(row, self.eval_keys) if evaluated else "(not evaluated)"
        remaining = self.config.epochs - (epoch + 1)
        eta = sum(self.epoch_times) / len(self.epoch_times) * remaining
        logger.info(
            "epoch %d/%d done  train_loss %.4f  %s  lr %.4g  took %.1fs%s",
            epoch + 1,
            self.config.epochs,
            row["train_loss"],
            shown,
            row["lr"],
            self.epoch_times[-1],
            f"  eta {format_duration(eta)}" if remaining else "",
        )
        return True

    def _finish(self) -> TrainResult:
        """The summary and the curves of the run (rank 0 writes them)."""
        rows = self.run_dir.read_metrics() if self.context.is_main else []
        done = self.config.epochs if self.diverged_at is None else self.diverged_at - 1
        summary = self.summary(done, rows)
        if self.context.is_main:
            self.run_dir.write_summary(summary)
            title = f"{self.recipe.name} ({self.recipe.variant})"
            curve = Curve(self.recipe.variant, self.recipe.lam is not None, rows)
            plot_curves([curve], self.run_dir.curves_path, self.task, title=title)
        barrier(self.context)
        return TrainResult(self.run_dir.path, summary, self.model, self.context.is_main)

    def _write_epoch(self, epoch: int, row: dict[str, Any], improved: bool) -> None:
        self.run_dir.append_metrics(row)
        if not math.isfinite(row["train_loss"]):
            return
        point = ResumePoint(epoch, self.global_step, self.best)
        state = training_state(point, self.optimizers, self.schedulers, self.scaler)
        ema_state = self.ema.state_dict() if self.ema is not None else None
        if improved:
            checkpoint.save_checkpoint(self.run_dir.checkpoint(BEST), self.model.state_dict(), state, ema_state)
        checkpoint.save_checkpoint(self.run_dir.checkpoint(LAST), self.model.state_dict(), state, ema_state)
        self.run_dir.write_summary(self.summary(epoch, self.run_dir.read_metrics()))


def train(
    recipe: Recipe,
    run_dir: str | Path | None = None,
    *,
    resume: bool = False,
    device: str = "auto",
    show_progress: bool | None = None,
    report: ReportOptions | None = None,
) -> TrainResult:
    """Train ``recipe`` into ``run_dir`` (default ``runs/<name>-<tract|vanilla>``); see the module docstring.

    Under ``torchrun`` every rank calls this; only rank 0 writes files. ``resume=True`` continues from the
    run directory's last checkpoint (the recipe must be the same, except for the keys
    :data:`~tract_hub.training.resume.RESUMABLE` names). ``report``: log interval and metric sinks.
    """
    context = setup_distributed(device)
    library_logger = logging.getLogger("tract_hub")
    level = library_logger.level
    if not context.is_main:  # one rank reports; the others only warn
        library_logger.setLevel(logging.WARNING)
    try:
        directory = RunDirectory(run_dir if run_dir is not None else default_run_dir(recipe))
        return Trainer(recipe, directory, context, show_progress, report).run(resume)
    finally:
        library_logger.setLevel(level)
        teardown_distributed(context)
