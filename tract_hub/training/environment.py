"""``environment.json`` of a run: versions, device, world size and the settings that change numerics.

Example:
    >>> import torch
    >>> record = environment_record(device=torch.device("cpu"), world_size=1, precision="fp32", exact=False,
    ...                             exact_reason="one process")
    >>> sorted(record["versions"])
    ['python', 'timm', 'torch', 'torchvision', 'tract_hub']
"""

from __future__ import annotations

import platform
from typing import Any

import torch

from .._version import __version__


def environment_record(
    *, device: torch.device, world_size: int, precision: str, exact: bool, exact_reason: str, extra: dict | None = None
) -> dict[str, Any]:
    """Versions, device and the settings that change numerics, for ``environment.json``."""
    import timm
    import torchvision

    record: dict[str, Any] = {
        "versions": {
            "tract_hub": __version__,
            "torch": torch.__version__,
            "torchvision": torchvision.__version__,
            "timm": timm.__version__,
            "python": platform.python_version(),
        },
        "platform": platform.platform(),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "cpu_threads": torch.get_num_threads(),
        "world_size": world_size,
        "precision": precision,
        "tract_exact": {"enabled": exact, "reason": exact_reason},
    }
    record.update(extra or {})
    return record
