"""The one shape of a dataset reader (in the spirit of TorchGeo's datasets, without torch).

Every dataset of the kit has one reader class, in its own module, with the same constructor and
the same four verbs::

    reader = OSCD(root, split="train", bands=None, download=False, checksum=True)
    reader.sites            # the site names found under root (for that split)
    scene = reader.read(site)   # a validated scene, built through schema.make_scene
    fig = reader.plot(site)     # a figure of that scene (urbankit.viz)
    Reader.write_sample(folder) # the reader writes its own small synthetic sample

Constructor arguments:

- ``root``: the dataset's folder (the layout as distributed; see each reader's docstring).
- ``split``: one of the reader's :attr:`Reader.splits` (``"all"`` keeps every site).
- ``bands``: the optical bands to read, as names or a subset name such as ``"rgb"`` (None:
  the reader's default); readers without a band choice refuse anything but None.
- ``download``: when True and ``root`` does not exist yet, fetch the reader's registry entries
  (:attr:`Reader.sources`, :func:`urbankit.data.download.fetch`) into ``root``'s parent; the
  entries' target folder must then be ``root``'s name.
- ``checksum``: when True (default) a download without a known checksum is refused; False
  allows it (GitHub archives and some mirrors publish none).

**The ``dataset`` attribute rule.** ``scene.attrs["dataset"]`` is always the producing reader's
:attr:`Reader.key`: a lowercase snake_case name (``oscd``, ``spacenet7_s1s2``, ``levir_cd``,
``whu_cd``, ``dsifn``, ``sysu_cd``, ``geotiff``, ``ghsl``, ``worldpop``; the generators write
``synthetic`` and ``synthetic_region``); never a title or free text (a title lives in
:attr:`Reader.title`, provenance in ``source``).

Readers never import torch.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import ConfigError

__all__ = ["READERS", "Reader", "reader_for"]

#: key -> reader class, filled as reader modules are imported (see :func:`reader_for`).
READERS: dict[str, type[Reader]] = {}

#: reader key -> the module that defines it (so that :func:`reader_for` can import it lazily)
_MODULES = {"oscd": "oscd", "spacenet7_s1s2": "spacenet7", "levir_cd": "levir_cd", "whu_cd": "whu_cd",
            "dsifn": "dsifn", "sysu_cd": "sysu_cd", "geotiff": "generic", "ghsl": "ghsl", "worldpop": "worldpop"}


class Reader:
    """Base class of the dataset readers (module docstring: constructor, verbs, attr rule).

    Subclasses set :attr:`key`, :attr:`title`, :attr:`splits`, :attr:`sources` and implement
    :attr:`sites`, :meth:`read` and :meth:`write_sample`.
    """

    #: the scene's ``dataset`` attr and the reader's registry name
    key: ClassVar[str] = ""
    #: human-readable name (figures, messages)
    title: ClassVar[str] = ""
    #: accepted ``split`` values; ``"all"`` is always accepted
    splits: ClassVar[tuple[str, ...]] = ()
    #: registry entries (:mod:`urbankit.data.sources`) that ``download=True`` fetches
    sources: ClassVar[tuple[str, ...]] = ()
    #: the sub-folder of ``data_samples/`` its embedded sample lives in (None: not embedded)
    sample_folder: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.key:
            READERS[cls.key] = cls

    def __init__(self, root: str | os.PathLike, split: str = "all", bands: str | Sequence[str] | None = None,
                 download: bool = False, checksum: bool = True):
        self.root = Path(root).expanduser()
        if split != "all" and split not in self.splits:
            raise ConfigError(f"{self.title}: split must be 'all' or one of {self.splits}, got {split!r}")
        self.split = split
        # a subset name ("rgb", "10m") stays one word; a list of band names becomes a tuple
        self.bands = bands if bands is None or isinstance(bands, str) else tuple(bands)
        self.checksum = bool(checksum)
        if download and not self.root.exists():
            self.download(self.root, checksum=checksum)

    @classmethod
    def download(cls, root: str | os.PathLike, *, checksum: bool = True) -> Path:
        """Fetch :attr:`sources` so that they land in ``root`` (verified where a checksum is known).

        Raises:
            ConfigError: the reader has no registry entry, or ``root``'s name is not the entries'
                target folder.
        """
        from .download import fetch
        from .sources import get_source

        root = Path(root).expanduser()
        if not cls.sources:
            raise ConfigError(f"{cls.title}: no registry entry to download; place the files under {root}")
        targets = {get_source(name).target for name in cls.sources}
        if targets != {root.name}:
            raise ConfigError(f"{cls.title}: the download lands in a folder named {sorted(targets)}; "
                              f"pass root=<data_root>/{sorted(targets)[0]} (got {root})")
        for name in cls.sources:
            fetch(name, root.parent, allow_unverified=not checksum)
        return root

    @property
    def sites(self) -> list[str]:
        """The site names found under ``root`` for the chosen split."""
        raise NotImplementedError

    def read(self, site: str):
        """The scene of ``site``: an ``xarray.Dataset`` built by ``schema.make_scene`` (validated)."""
        raise NotImplementedError

    def plot(self, site: str, **kwargs: Any):
        """A figure of the scene of ``site`` (:func:`urbankit.viz.plot_scene`); returns the Figure."""
        from ..viz import plot_scene

        return plot_scene(self.read(site), **kwargs)

    @classmethod
    def write_sample(cls, folder: str | os.PathLike, seed: int = 0) -> Path:
        """Write a small synthetic sample in this reader's on-disk layout; returns its root."""
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.sites)

    def __iter__(self) -> Iterator:
        for site in self.sites:
            yield self.read(site)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(root={str(self.root)!r}, split={self.split!r}, sites={len(self.sites)})"


def reader_for(key: str) -> type[Reader]:
    """The reader class registered under ``key`` (imports its module when needed)."""
    import importlib

    if key not in READERS and key in _MODULES:
        importlib.import_module(f".{_MODULES[key]}", __package__)
    if key not in READERS:
        raise ConfigError(f"unknown dataset reader {key!r}; known: {sorted(_MODULES)}")
    return READERS[key]
