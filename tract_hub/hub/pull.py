"""``pull``: a verified local copy of a checkpoint (config, weights, card, curves) from a directory or the Hub.

Example:
    >>> import tempfile, tract_hub
    >>> from tract_hub.models import create_model
    >>> saved = tract_hub.save_pretrained(create_model("timm:test_resnet"), tempfile.mkdtemp() + "/a")
    >>> sorted(p.name for p in pull(saved, tempfile.mkdtemp() + "/b").iterdir())
    ['README.md', 'config.json', 'model.safetensors']
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from ..artifacts.checkpoint_files import CARD_NAME, CONFIG_NAME, CURVES_NAME, WEIGHTS_NAME
from ..artifacts.files import atomic_directory
from ..pretrained import fetch_file, load_checkpoint, parse_source

logger = logging.getLogger(__name__)


def pull(
    source: str | os.PathLike[str],
    directory: str | os.PathLike[str],
    *,
    revision: str | None = None,
    overwrite: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> Path:
    """Copy a checkpoint (config, weights, card, curves) into ``directory`` after verifying that it loads.

    The copy is written atomically and only once the checkpoint has been built and loaded strictly. Every file
    copied is a regular file inside the checkpoint's folder (a link to a file outside is refused, never copied).
    """
    where = parse_source(source, revision)
    files = {name: fetch_file(where, name, cache_dir=cache_dir, token=token) for name in (CONFIG_NAME, WEIGHTS_NAME)}
    for name in (CARD_NAME, CURVES_NAME):
        files[name] = fetch_file(where, name, required=False, cache_dir=cache_dir, token=token)
    load_checkpoint(files[CONFIG_NAME], files[WEIGHTS_NAME], str(where))
    target = Path(directory)
    needed = sum(path.stat().st_size for path in files.values() if path is not None)
    with atomic_directory(target, overwrite=overwrite, needed_bytes=needed) as staging:
        for name, path in files.items():
            if path is not None:
                shutil.copyfile(path, staging / name)
    logger.info("pulled %s into %s", where, target)
    return target
