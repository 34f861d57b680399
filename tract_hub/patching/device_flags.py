"""A yes/no decided on the device, read on the host only once the device has computed it: never a wait.

Exact mode notices some events on the device (a ``.grad`` changed between backwards, for instance) and wants to
say so in a warning. Reading the answer at once would make the host wait for the device (a host-device sync, which
DESIGN decision 10 rules out of the backward). :class:`DeviceFlag` reads a CPU answer at once (that costs
nothing), starts a non-blocking copy of an accelerator's answer and reads it at a later poll once the copy is done,
and ignores the meta device (where nothing is computed).

Example:
    >>> import torch
    >>> flag = DeviceFlag()
    >>> flag.post(torch.tensor(True))
    >>> flag.poll()
    True
"""

from __future__ import annotations

import torch


class DeviceFlag:
    """Whether any 0-d bool posted so far was true, as far as the device has finished computing them."""

    def __init__(self) -> None:
        self._seen = False
        self._in_flight: list[tuple[torch.Tensor, torch.cuda.Event]] = []

    def post(self, flag: torch.Tensor) -> None:
        """Record a 0-d bool tensor (without waiting for it)."""
        if self._seen or flag.device.type == "meta":
            return
        if flag.device.type == "cpu":
            self._seen = bool(flag)
            return
        if flag.device.type != "cuda":  # no event API to poll: not read (the flag only feeds warnings)
            return
        host = torch.empty((), dtype=torch.bool, pin_memory=True)
        host.copy_(flag, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        self._in_flight.append((host, event))

    def poll(self) -> bool:
        """True once a posted flag is known to have been true."""
        while self._in_flight and self._in_flight[0][1].query():
            host, _ = self._in_flight.pop(0)
            self._seen = self._seen or bool(host)
        return self._seen
