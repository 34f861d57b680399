"""Progress of long work: log lines every N steps (for pipes, nohup and cluster logs) and tqdm bars on terminals.

:class:`StepMeter` measures the optimizer steps of one epoch and, every ``interval`` steps and at the last step
of an epoch longer than that, logs one line through :mod:`logging` (as timm's and torchvision's training scripts
do)::

    epoch 3/90  step 200/1251 (16%)  loss 3.8121 (epoch 3.9502)  lr 0.1  2485 img/s  data 0.012 s/step
    eta 0:07:12  peak mem 10.20 GiB       (one line in the log)

Bars show only on the main rank, when stderr is a terminal and ``CI`` is not set; the log lines are written
above the bar there.

Example:
    >>> meter = StepMeter(epoch=1, epochs=2, steps=4, interval=2, world_size=1)
    >>> for step in range(4):
    ...     meter.step(loss_sum=8.0, samples=4, lr=0.1, data_time=0.0)
    >>> meter.loss
    2.0
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from ..artifacts.task import metric

T = TypeVar("T")

logger = logging.getLogger(__name__)

#: Optimizer steps between two log lines, unless told otherwise (timm's and torchvision's default).
DEFAULT_LOG_INTERVAL = 50


def progress_wanted() -> bool:
    """True on an interactive terminal outside CI (``CI`` unset or false)."""
    if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    return sys.stderr.isatty()


def progress(iterable: Iterable[T], *, desc: str, total: int | None = None, enabled: bool | None = None) -> Iterator[T]:
    """``iterable`` with a tqdm bar when ``enabled`` (default: :func:`progress_wanted`)."""
    if enabled is None:
        enabled = progress_wanted()
    if not enabled:
        yield from iterable
        return
    from tqdm.auto import tqdm

    with tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True) as bar:
        yield from bar


@contextlib.contextmanager
def bar_and_logs(total: int, desc: str, enabled: bool) -> Iterator[Any]:
    """A tqdm bar (None when not ``enabled``); while it shows, log lines are written above it."""
    if not enabled:
        yield None
        return
    from tqdm.auto import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True) as bar:
        yield bar


def format_scores(scores: Mapping[str, Any], keys: Sequence[str]) -> str:
    """``"top1 45.23%  top5 88.10%  loss 1.2345"`` for the ``keys`` of ``scores`` that hold numbers: accuracies
    and mAP first and in percent, then the loss; the ``ema_`` keys after the others, shown as ``ema``.

    Example:
        >>> format_scores({"val_loss": 1.23456, "top1": 0.4523, "ema_top1": 0.5}, ["val_loss", "top1", "ema_top1"])
        'top1 45.23%  loss 1.2346  ema top1 50.00%'
    """
    parts = []
    for key in sorted(keys, key=lambda k: (k.startswith("ema_"), metric(k.removeprefix("ema_")) is None)):
        value = scores.get(key)
        if not isinstance(value, int | float) or isinstance(value, bool):
            continue
        prefix, name = ("ema ", key[4:]) if key.startswith("ema_") else ("", key)
        score = metric(name)
        if score is not None:
            parts.append(f"{prefix}{name} {score.shown(value)}")
        else:
            parts.append(f"{prefix}{'loss' if name == 'val_loss' else name} {value:.4f}")
    return "  ".join(parts)


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``"1 epoch"``, ``"2 epochs"`` (``nouns``: the plural, when it is not ``noun + "s"``)."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (``D days, H:MM:SS`` past a day)."""
    return str(datetime.timedelta(seconds=max(0, round(seconds))))


def peak_memory(device: Any) -> str | None:
    """``"peak mem 10.20 GiB"`` (CUDA: the most allocated on ``device``) or ``"peak rss 1.10 GiB"`` (the
    process's peak resident memory, where the platform reports it); None elsewhere."""
    import torch

    if getattr(device, "type", None) == "cuda" and torch.cuda.is_available():
        return f"peak mem {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_bytes = peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB
    return f"peak rss {peak_bytes / 2**30:.2f} GiB"


class StepMeter:
    """Loss, learning rate, throughput, data time and ETA of one epoch's optimizer steps; see the module docstring.

    ``loss_sum`` is this rank's loss times its samples, a number or a 0-d device tensor that is only read (a
    host-device sync) when a line is due; throughput counts every rank (``world_size`` times this rank's samples).
    """

    def __init__(
        self,
        *,
        epoch: int,
        epochs: int,
        steps: int,
        interval: int,
        world_size: int,
        device: Any = None,
        bar: Any = None,
        on_report: Callable[[dict[str, float]], None] | None = None,
    ) -> None:
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.interval, self.world_size, self.device, self.bar = interval, world_size, device, bar
        self.on_report = on_report
        self.done = 0
        self.start = self._mark = time.perf_counter()
        self.loss_sum = self.samples = 0.0
        self._window_loss = self._window_samples = self._window_data = 0.0
        self._window_steps = 0

    @property
    def loss(self) -> float:
        """The epoch's mean loss so far (this rank)."""
        return float(self.loss_sum) / max(self.samples, 1.0)

    def step(self, *, loss_sum: Any, samples: int, lr: float, data_time: float) -> None:
        """Record one optimizer step; logs a line when one is due."""
        self.done += 1
        self.loss_sum += loss_sum
        self.samples += samples
        self._window_loss += loss_sum
        self._window_samples += samples
        self._window_data += data_time
        self._window_steps += 1
        if self.bar is not None:
            self.bar.update(1)
        # the epoch's last step too, unless the epoch is one interval or shorter (its epoch line follows at once)
        if self.done % self.interval == 0 or (self.done == self.steps and self.steps > self.interval):
            self._report(lr)

    def _report(self, lr: float) -> None:
        now = time.perf_counter()
        window = max(now - self._mark, 1e-9)
        per_step = (now - self.start) / self.done
        loss = float(self._window_loss) / max(self._window_samples, 1.0)
        images_per_s = self._window_samples * self.world_size / window
        data_time = self._window_data / self._window_steps
        parts = [
            f"epoch {self.epoch}/{self.epochs}",
            f"step {self.done}/{self.steps} ({100 * self.done / self.steps:.0f}%)",
            f"loss {loss:.4f} (epoch {self.loss:.4f})",
            f"lr {lr:.4g}",
            f"{images_per_s:.0f} img/s",
            f"data {data_time:.3f} s/step",
            f"eta {format_duration(per_step * (self.steps - self.done))}",
        ]
        memory = peak_memory(self.device) if self.device is not None else None
        if memory:
            parts.append(memory)
        logger.info("  ".join(parts))
        if self.bar is not None:
            self.bar.set_postfix_str(f"loss {self.loss:.4f}  lr {lr:.4g}", refresh=False)
        if self.on_report is not None:
            self.on_report(
                {"train/loss": loss, "train/lr": lr, "train/images_per_s": images_per_s, "train/data_s": data_time}
            )
        self._mark = now
        self._window_loss = self._window_samples = self._window_data = 0.0
        self._window_steps = 0
