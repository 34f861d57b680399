"""Where a checkpoint comes from: a local directory or a Hugging Face Hub repository, and fetching its files.

``source`` is a local directory (``"path/to/dir"`` or ``"local-dir:path"``), ``"hf-hub:org/name[@revision]"``, or
the plain ``"org/name[@revision]"``. Hub files go through ``huggingface_hub.hf_hub_download``, so the cache,
``HF_HUB_OFFLINE``, ``HF_HOME`` / ``HF_HUB_CACHE`` and the token from the usual places are honoured. Every
failure becomes a :class:`HubError` that says what is wrong and what to do.

A fetched file is always a regular file inside its checkpoint folder (:func:`~tract_hub.artifacts.reading.
confined_file`): the local directory, or the repository's folder of the Hugging Face cache (whose snapshots
link to its blobs). A symbolic link to anything outside, or a device or pipe, is refused.

Example:
    >>> from tract_hub.pretrained.fetch import parse_source
    >>> parse_source("hf-hub:org/name@v1")
    CheckpointSource(kind='hub', location='org/name', revision='v1')
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .._version import __version__
from ..artifacts.checkpoint_files import PICKLE_WEIGHT_NAMES, WEIGHTS_NAME
from ..artifacts.reading import confined_file
from ..errors import CheckpointIntegrityError, HubError, InvalidArgumentError

logger = logging.getLogger(__name__)

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+(@[\w.\-/]+)?$")
_LOGIN_HINT = "log in with `hf auth login`, set HF_TOKEN, or pass token="


@dataclass(frozen=True)
class CheckpointSource:
    """``kind`` "local" (``location`` a directory) or "hub" (``location`` a repo id, at ``revision``)."""

    kind: str
    location: str
    revision: str | None = None

    def __str__(self) -> str:
        if self.kind == "local":
            return self.location
        return f"hf-hub:{self.location}" + (f"@{self.revision}" if self.revision else "")


def _split_revision(text: str, revision: str | None, source: str) -> tuple[str, str | None]:
    repo_id, sep, pinned = text.partition("@")
    if sep and (not pinned or "@" in pinned):
        raise InvalidArgumentError(f"source {source!r}: write hf-hub:org/name@revision with one revision after '@'")
    if sep and revision is not None and revision != pinned:
        raise InvalidArgumentError(f"source {source!r} pins revision {pinned!r} but revision={revision!r} was given")
    return repo_id, pinned or revision


def _checked_repo_id(repo_id: str, source: str) -> str:
    from huggingface_hub.errors import HFValidationError
    from huggingface_hub.utils import validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as error:
        raise InvalidArgumentError(
            f"source {source!r}: {repo_id!r} is not a valid Hub repository id ({error})"
        ) from error
    if "/" not in repo_id:
        raise InvalidArgumentError(f"source {source!r}: write the repository as org/name (hf-hub:org/name)")
    return repo_id


def parse_source(source: str | os.PathLike[str], revision: str | None = None) -> CheckpointSource:
    """Classify ``source`` as a local directory or a Hub repository (see the module docstring)."""
    if isinstance(source, os.PathLike):
        return CheckpointSource("local", os.fspath(source))
    if not isinstance(source, str) or not source:
        raise InvalidArgumentError(
            f"source={source!r}: give a local directory, 'hf-hub:org/name[@revision]' or 'org/name'"
        )
    if source.startswith("hf-hub:"):
        repo_id, revision = _split_revision(source.removeprefix("hf-hub:"), revision, source)
        return CheckpointSource("hub", _checked_repo_id(repo_id, source), revision)
    if source.startswith("local-dir:"):
        return CheckpointSource("local", source.removeprefix("local-dir:"))
    if Path(source).expanduser().exists():
        return CheckpointSource("local", source)
    if _REPO_ID.match(source):
        repo_id, revision = _split_revision(source, revision, source)
        return CheckpointSource("hub", _checked_repo_id(repo_id, source), revision)
    raise HubError(
        f"source {source!r} is neither an existing directory nor a Hub repository; give a checkpoint directory, "
        "'hf-hub:org/name[@revision]' or 'org/name'"
    )


def _missing_file(source: CheckpointSource, filename: str, listing: list[str]) -> CheckpointIntegrityError:
    if filename == WEIGHTS_NAME:
        pickled = [name for name in PICKLE_WEIGHT_NAMES if name in listing]
        if pickled:
            return CheckpointIntegrityError(
                f"{source} has no {WEIGHTS_NAME}, only {pickled}: tract_hub never unpickles weights. Convert them "
                f"to safetensors where you trust the file (safetensors.torch.save_file) and save as {WEIGHTS_NAME}"
            )
        return CheckpointIntegrityError(
            f"{source} has no {WEIGHTS_NAME}; it is not a complete tract_hub/timm checkpoint"
        )
    return CheckpointIntegrityError(
        f"{source} has no {filename}; it is not a tract_hub/timm checkpoint (save one with tract_hub.save_pretrained)"
    )


def _hub_error(error: Exception, source: CheckpointSource, filename: str) -> HubError:
    """The project's error for a failed ``hf_hub_download``."""
    from huggingface_hub import constants
    from huggingface_hub import errors as hf

    if isinstance(error, hf.GatedRepoError):
        return HubError(f"{source} is gated: request access on its Hub page, then {_LOGIN_HINT}")
    if isinstance(error, hf.RepositoryNotFoundError):
        return HubError(
            f"{source}: the repository does not exist on the Hub, or it is private and no valid token was sent. "
            f"Check the name; for a private repository {_LOGIN_HINT}"
        )
    if isinstance(error, hf.RevisionNotFoundError):
        return HubError(
            f"{source}: the repository has no revision {source.revision!r}; check the branch, tag or commit"
        )
    if isinstance(error, hf.LocalEntryNotFoundError):
        if constants.HF_HUB_OFFLINE:
            return HubError(
                f"{source}: {filename} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and HF_HUB_OFFLINE "
                "is set; unset HF_HUB_OFFLINE to download it, or point HF_HUB_CACHE / cache_dir= at a cache that has it"
            )
        return HubError(
            f"{source}: cannot reach the Hub to download {filename} and it is not in the Hugging Face cache; check "
            "the network connection (or a proxy / HF_ENDPOINT), then try again"
        )
    if isinstance(error, hf.EntryNotFoundError):
        return _missing_file(source, filename, [])
    if isinstance(error, hf.HfHubHTTPError):
        status = getattr(getattr(error, "response", None), "status_code", None)
        if status in (401, 403):
            return HubError(
                f"{source}: the Hub refused access (HTTP {status}); {_LOGIN_HINT} with a token that can read it"
            )
        return HubError(f"{source}: the Hub request for {filename} failed (HTTP {status}): {error}")
    return HubError(f"{source}: downloading {filename} failed ({type(error).__name__}: {error}); check the network")


def http_library_error() -> type[Exception]:
    """The HTTP library's own ``HTTPError`` that huggingface_hub's ``HfHubHTTPError`` derives from: httpx's
    (huggingface_hub >= 1.0, whose connection failures derive from it and not from OSError) or requests' (before
    1.0, whose errors are OSErrors). Found by name among the bases, since the library is huggingface_hub's choice.

    Example:
        >>> http_library_error().__name__
        'HTTPError'
    """
    from huggingface_hub import errors as hf

    return next(base for base in hf.HfHubHTTPError.__mro__[1:] if base.__name__ == "HTTPError")


def hub_request_errors() -> tuple[type[BaseException], ...]:
    """What a failed request to the Hub raises (``except hub_request_errors():``): OSError, huggingface_hub's
    ``HfHubHTTPError`` and :func:`http_library_error`; the project turns each into a :class:`HubError`.

    Example:
        >>> OSError in hub_request_errors()
        True
    """
    from huggingface_hub import errors as hf

    return (OSError, hf.HfHubHTTPError, http_library_error())


def fetch_file(
    source: CheckpointSource,
    filename: str,
    *,
    required: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    token: str | bool | None = None,
) -> Path | None:
    """The real local path of ``filename`` in ``source`` (the Hub's go through the cache), a regular file inside
    the checkpoint's folder; None if optional and absent."""
    if source.kind == "local":
        directory = Path(source.location).expanduser()
        if not directory.is_dir():
            raise HubError(f"checkpoint directory {str(directory)!r} does not exist or is not a directory")
        path = directory / filename
        if os.path.lexists(path):
            return confined_file(path, directory, error=CheckpointIntegrityError)
        if not required:
            return None
        raise _missing_file(source, filename, [p.name for p in directory.iterdir()])
    downloaded = _download(source, filename, required=required, cache_dir=cache_dir, token=token)
    return None if downloaded is None else confined_file(downloaded, _cache_folder(downloaded), error=HubError)


def _cache_folder(path: Path) -> Path:
    """The repository's folder of the Hugging Face cache that holds ``path`` (``models--org--name``)."""
    for parent in path.parents:
        if parent.name == "snapshots":
            return parent.parent
    return path.parent


def _download(
    source: CheckpointSource,
    filename: str,
    *,
    required: bool,
    cache_dir: str | os.PathLike[str] | None,
    token: str | bool | None,
) -> Path | None:
    import huggingface_hub
    from huggingface_hub import errors as hf

    try:
        return Path(
            huggingface_hub.hf_hub_download(
                source.location,
                filename,
                revision=source.revision,
                cache_dir=cache_dir,
                token=token,
                library_name="tract_hub",
                library_version=__version__,
            )
        )
    except (*hub_request_errors(), hf.EntryNotFoundError) as error:
        if not required and isinstance(error, hf.EntryNotFoundError):
            logger.debug("%s has no %s", source, filename)
            return None
        raise _hub_error(error, source, filename) from error
