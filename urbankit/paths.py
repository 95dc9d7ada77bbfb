"""Where things are: the repository root, the embedded samples, the book."""
from __future__ import annotations

import os
from pathlib import Path

from .errors import ConfigError

_PACKAGE_DIR = Path(__file__).resolve().parent


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """Return the urbankit checkout root (the folder holding ``_toc.yml`` and ``urbankit/``).

    Looks upwards from ``start`` (default: the current directory), then next to the installed
    package (editable installs and clones). Raises ConfigError when no checkout is found.
    """
    candidates = []
    if start is not None:
        candidates.append(Path(start).resolve())
    candidates.append(Path.cwd().resolve())
    candidates.append(_PACKAGE_DIR.parent)
    for base in candidates:
        for folder in (base, *base.parents):
            if (folder / "_toc.yml").is_file() and (folder / "urbankit").is_dir():
                return folder
    raise ConfigError(
        "could not find the urbankit checkout (a folder with _toc.yml and urbankit/) above "
        f"{candidates[0]}; run from inside the cloned repository"
    )


def samples_dir() -> Path:
    """Return the folder of embedded samples (``data_samples/`` of the checkout).

    The environment variable ``URBANKIT_SAMPLES`` overrides the location.
    """
    env = os.environ.get("URBANKIT_SAMPLES")
    if env:
        path = Path(env)
        if not path.is_dir():
            raise ConfigError(f"URBANKIT_SAMPLES={env!r} is not a folder")
        return path
    return repo_root() / "data_samples"


def shared_real_dir() -> Path | None:
    """Return ``../shared/data/real`` beside the checkout when it exists, else None."""
    env = os.environ.get("URBANKIT_REAL_DATA")
    if env:
        return Path(env) if Path(env).is_dir() else None
    try:
        root = repo_root()
    except ConfigError:
        return None
    path = root.parent / "shared" / "data" / "real"
    return path if path.is_dir() else None


def data_root_for(profile: str, data_root: str | os.PathLike | None = None) -> Path | None:
    """The one data-root rule of every chapter: where a profile reads its real data.

    - an explicit ``data_root`` always wins (it must exist, except for ``full``, which
      downloads into it);
    - ``quick``: None (the chapters read the embedded ``data_samples/``);
    - ``real``: ``$URBANKIT_REAL_DATA`` or ``../shared/data/real`` beside the checkout
      (:func:`shared_real_dir`); a ConfigError says how to point elsewhere when neither exists;
    - ``full``: the download folder (``$URBANKIT_DATA``, else ``~/urbankit_data``), where
      ``urbankit download`` puts the datasets.

    Each dataset lives in a sub-folder of the root named as in ``urbankit download --list``
    (``oscd/``, ``oscd_s1/``, ``levir_cd/``, ...).
    """
    if data_root is not None:
        path = Path(data_root).expanduser()
        if profile != "full" and not path.is_dir():
            raise ConfigError(f"data_root={str(data_root)!r} is not a folder")
        return path
    if profile == "quick":
        return None
    if profile == "real":
        path = shared_real_dir()
        if path is None:
            raise ConfigError("profile 'real' reads real data from a folder: pass data_root (urbankit book "
                              "--data-root DIR, or -p data_root DIR with papermill) or set URBANKIT_REAL_DATA")
        return path
    if profile == "full":
        from .data.download import default_root

        return default_root()
    raise ConfigError(f"unknown profile {profile!r}; choose quick, real or full")
