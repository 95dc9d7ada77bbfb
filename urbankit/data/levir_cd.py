"""LEVIR-CD (Chen & Shi 2020): building change pairs of Google Earth RGB imagery, 0.5 m.

Layout as distributed: ``<root>/{train,val,test}/{A,B,label}/*.png`` (637 pairs of 1024 x 1024);
also understood: flat ``A/ B/ label/`` folders whose pair names carry the split
(``train_*`` / ``val_*`` / ``test_*``) or are listed in ``list/{train,val,test}.txt``.

Facts of the real sample crops (checked on ``levir_cd/`` crops): 256 x 256 RGB PNG (mode ``RGB``)
with grayscale (mode ``L``) labels coded **0/255** (0 and 255 only); ``label/train_386_0512_0768.png``
has no change.

Patches: ``tile_size=256`` (or :func:`~urbankit.data.vhr_pairs.tile_scene`) cuts the 1024 x 1024
tiles into the standard 16 patches each on a non-overlapping 4 x 4 grid (7,120 / 1,024 / 2,048
train / val / test patches), named ``<tile>_<yyyy>_<xxxx>`` as LEVIR-CD-256 (the row / column
order of the LEVIR-CD-256 names is not documented by its authors; the kit reads row first).

The embedded sample ``data_samples/levir`` is written by :meth:`LEVIRCD.write_sample`.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import DataFormatError
from .vhr_pairs import VHRChangeDataset, VHRReader, write_pair_sample

__all__ = ["LAYOUT", "LEVIRCD", "read_levir_cd", "write_levir_pair"]

#: Folders, label coding and provenance. Per-pair acquisition dates are not distributed: ``time``
#: holds the dataset's span 2002..2018.
LAYOUT = dict(
    title="LEVIR-CD", t1=("A",), t2=("B",), label=("label",), label_coding="0/255",
    dates=("2002-01-01", "2018-01-01"), region="north_america",
    time_note="per-pair acquisition dates are not distributed; time holds the dataset's span 2002..2018",
    source="LEVIR-CD (Chen & Shi 2020), Google Earth imagery, 0.5 m",
    licence="LEVIR-CD terms: academic/research use only")


class LEVIRCD(VHRReader):
    """LEVIR-CD (Chen & Shi 2020): 637 pairs of 1024 x 1024 Google Earth RGB, 0.5 m; labels 0/255."""

    key = "levir_cd"
    sources = ("levir_cd_train", "levir_cd_val", "levir_cd_test")
    sample_folder = "levir"
    layout = LAYOUT

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write the embedded LEVIR sample (4 flat 256 x 256 train pairs) to ``folder/levir``."""
        return write_pair_sample(Path(folder) / "levir", cls.key, n_pairs=4, size=256, seed=seed, flat=True)


def read_levir_cd(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
                  label_coding: str | None = None) -> VHRChangeDataset:
    """LEVIR-CD: official ``train/val/test`` folders, or flat ``A/ B/ label/`` crops.

    The split of flat crops is their name prefix (``train_``/``val_``/``test_``) or a ``list/`` file.

    ``tile_size=256`` cuts the 1024x1024 tiles into the standard 16 patches each. Labels are
    0/255 (``label_coding`` overrides).
    """
    return VHRChangeDataset(root, "levir_cd", split, tile_size=tile_size, validate=validate,
                            label_coding=label_coding)


def write_levir_pair(root: str | os.PathLike, name: str, scene, *, bands: Sequence[str] = ("B04", "B03", "B02"),
                     scale: float = 0.3) -> Path:
    """Write a scene's first and last date and its ``change`` as a LEVIR-CD pair.

    Files: ``<root>/A/<name>.png``, ``<root>/B/<name>.png`` (8-bit RGB = clip(reflectance /
    ``scale`` * 255)) and ``<root>/label/<name>.png`` (0/255, LEVIR-CD's coding), each written to
    a temporary name and renamed. ``name`` should carry the split prefix (``train_``, ``val_``,
    ``test_``) so :func:`read_levir_cd` finds the split. Returns ``root``.
    """
    from PIL import Image

    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise DataFormatError(f"pair name {name!r}: use letters, digits, '_', '-' or '.' only")
    missing = [b for b in bands if b not in scene["optical"].band.values]
    if missing or "change" not in scene:
        raise DataFormatError(f"site {scene.attrs.get('site', '?')!r}: needs optical bands {list(bands)} and "
                              f"a change variable to write a LEVIR pair (missing bands: {missing})")
    rgb = scene["optical"].sel(band=list(bands)).values[[0, -1]]  # (2, 3, H, W)
    img = np.clip(np.nan_to_num(rgb) / scale * 255.0, 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    label = (scene["change"].values > 0).astype(np.uint8) * 255
    root = Path(root)
    for folder, arr in (("A", img[0]), ("B", img[1]), ("label", label)):
        (root / folder).mkdir(parents=True, exist_ok=True)
        tmp = root / folder / f".{name}.tmp.png"
        Image.fromarray(arr).save(tmp)
        os.replace(tmp, root / folder / f"{name}.png")
    return root
