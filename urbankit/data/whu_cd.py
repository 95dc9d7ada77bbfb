"""WHU-CD (Ji et al. 2019): Christchurch building change, aerial RGB of 2012 and 2016.

Layouts: the distributed pair of large epoch GeoTIFFs (``before``/``2012``, ``after``/``2016``)
plus a change-label GeoTIFF, read window by window by :class:`WHUEpochTiles`; or pre-cut tiles in
``A/B/label`` or ``prev/curr/label`` folders, optionally under ``train/val/test``. Labels are
coded **0/255** (the pre-cut tiles and the change-label GeoTIFF; not checked on a real file here):
pass ``label_coding="0/1"`` for copies re-coded 0/1. The epoch GeoTIFFs keep their CRS.

WHU-CD has no official patch split: the kit's default is 256 x 256 non-overlapping tiles and a
**spatially separated 8:1:1 split in vertical strips** (:data:`WHU_SPLIT`): tile columns in the
western 80 % of the image are train, the next 10 % val, the eastern 10 % test. The split is a
pure function of the tile position, so it is reproducible; :meth:`WHUEpochTiles.split_table` /
:meth:`WHUEpochTiles.write_split_file` record it.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from affine import Affine

from ..errors import DataFormatError
from .raster import read_grid
from .vhr_pairs import (
    SPLITS,
    VHRChangeDataset,
    VHRReader,
    build_pair_scene,
    check_label_coding,
    has_pair_folders,
    read_label,
    read_rgb,
)

__all__ = ["LAYOUT", "WHUCD", "WHU_SPLIT", "WHUEpochTiles", "read_whu_cd"]

#: Folders, label coding and provenance (epochs 2012 and 2016, years only).
LAYOUT = dict(
    title="WHU-CD", t1=("A", "prev"), t2=("B", "curr"), label=("label", "change_label"), label_coding="0/255",
    dates=("2012-01-01", "2016-01-01"), region="oceania", time_note="epochs 2012 and 2016 (years only)",
    source=("WHU building change detection (Ji et al. 2019), Christchurch aerial imagery, 0.3 m "
            "(0.075 m original)"),
    licence="WHU building dataset terms: academic use")

#: The kit's WHU-CD split (no official split; 8:1:1 spatially separated).
WHU_SPLIT = {"tile_size": 256, "axis": "x", "fractions": (0.8, 0.1, 0.1), "order": SPLITS,
             "rule": "tile column index c of n_cols: c < floor(0.8 n) train, c < floor(0.9 n) val, else test"}


class WHUEpochTiles(Sequence):
    """Tiles of the WHU-CD epoch GeoTIFFs (read window by window; the files are ~1.5 GB each).

    ``before``/``after`` are the 2012/2016 RGB GeoTIFFs and ``label`` the change raster, all on
    the same pixel grid. Items are ``tile_size`` tiles on a non-overlapping grid (partial edge
    tiles dropped) with the kit's spatial 8:1:1 split (:data:`WHU_SPLIT`), named
    ``whu_<yyyyy>_<xxxxx>`` by pixel offsets. The CRS and transform of the files are kept.
    ``label_coding`` (``"0/255"``) is checked window by window: a tile whose label holds other
    values raises DataFormatError naming the label file and the tile.
    """

    def __init__(self, before, after, label, *, split: str | None = None, tile_size: int = 256,
                 fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), validate: bool = True,
                 label_coding: str = "0/255"):
        self.label_coding = check_label_coding(label_coding)
        self.paths = tuple(Path(p) for p in (before, after, label))
        for p in self.paths:
            if not p.is_file():
                raise DataFormatError(f"{p}: WHU-CD file not found")
        grids = [read_grid(p) for p in self.paths]
        shapes = [(*g.shape, info["count"]) for g, info in grids]
        self.crs, self.transform = grids[0][0].crs, grids[0][0].transform
        if shapes[0][2] < 3 or shapes[1][2] < 3:
            raise DataFormatError(f"{self.paths[0]} / {self.paths[1]}: expected RGB epochs, got "
                                  f"{shapes[0][2]} and {shapes[1][2]} bands")
        for p, s in zip(self.paths[1:], shapes[1:]):
            if s[:2] != shapes[0][:2]:
                raise DataFormatError(f"{p}: {s[0]}x{s[1]} pixels, but {self.paths[0]} has "
                                      f"{shapes[0][0]}x{shapes[0][1]}: the WHU-CD rasters must share "
                                      "one grid")
        if abs(sum(fractions) - 1) > 1e-6 or len(fractions) != 3:
            raise DataFormatError(f"fractions must be three numbers summing to 1, not {fractions}")
        self.height, self.width = shapes[0][:2]
        self.tile_size = tile_size
        self.validate = validate
        n_rows, n_cols = self.height // tile_size, self.width // tile_size
        if n_rows == 0 or n_cols == 0:
            raise DataFormatError(f"{self.paths[0]}: {self.height}x{self.width} is smaller than one tile")
        c_train = int(np.floor(fractions[0] * n_cols))
        c_val = int(np.floor((fractions[0] + fractions[1]) * n_cols))
        self._all = []
        for r in range(n_rows):
            for c in range(n_cols):
                s = "train" if c < c_train else "val" if c < c_val else "test"
                self._all.append((r * tile_size, c * tile_size, s))
        self.split = split
        self._items = [t for t in self._all if split is None or t[2] == split]

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int):
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} tiles")
        y0, x0, split = self._items[index]
        s = self.tile_size
        rows_cols = ((y0, y0 + s), (x0, x0 + s))
        a = read_rgb(self.paths[0], window=rows_cols)
        b = read_rgb(self.paths[1], window=rows_cols)
        try:
            change = read_label(self.paths[2], self.label_coding, window=rows_cols)
        except DataFormatError as exc:
            raise DataFormatError(f"{exc} (tile whu_{y0:05d}_{x0:05d})") from exc
        tr = self.transform @ Affine.translation(x0, y0) if self.transform is not None else None
        crs = self.crs if self.crs else None
        return build_pair_scene(a, b, change, site=f"whu_{y0:05d}_{x0:05d}", dataset="whu_cd", split=split,
                                y0=y0, x0=x0, transform=tr if crs else None, crs=crs,
                                extra_attrs={"tile": "whu", "row_off": y0, "col_off": x0,
                                             "split_rule": WHU_SPLIT["rule"], "label_coding": self.label_coding},
                                validate=self.validate)

    @property
    def names(self) -> list[str]:
        """Tile names ``whu_<yyyyy>_<xxxxx>`` of the chosen split (the reader's sites)."""
        return [f"whu_{y0:05d}_{x0:05d}" for y0, x0, _ in self._items]

    def scene(self, name: str):
        """The tile called ``name``."""
        try:
            index = self.names.index(name)
        except ValueError:
            raise DataFormatError(f"{self.paths[0]}: no WHU-CD tile named {name!r} in split {self.split!r}") from None
        return self[index]

    def split_table(self):
        """A pandas DataFrame of every tile: name, y0, x0, split (the recorded split)."""
        import pandas as pd

        return pd.DataFrame([dict(name=f"whu_{y:05d}_{x:05d}", y0=y, x0=x, split=s) for y, x, s in self._all])

    def write_split_file(self, path: str | os.PathLike) -> Path:
        """Write :meth:`split_table` as CSV (atomically: temporary name, then rename)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        self.split_table().to_csv(tmp, index=False)
        os.replace(tmp, path)
        return path


def _find_whu_epochs(root: Path) -> tuple[Path, Path, Path] | None:
    tifs = [p for p in root.rglob("*") if p.suffix.lower() in (".tif", ".tiff") and p.is_file()
            and not any(part.lower().startswith(("splited", "splitted", "split")) for part in p.parts)]
    def pick(pred):
        return [p for p in tifs if pred(str(p.relative_to(root)).lower().replace(" ", "_"))]
    labels = pick(lambda s: "change" in s)
    # the distributed names first (before.tif / after.tif), then any 2012 / 2016 image
    before = [p for p in tifs if p.stem.lower() == "before"] or pick(
        lambda s: ("before" in s or "2012" in s) and "change" not in s and "label" not in s)
    after = [p for p in tifs if p.stem.lower() == "after"] or pick(
        lambda s: ("after" in s or "2016" in s) and "change" not in s and "label" not in s)
    if not (labels or before or after):
        return None
    if len(labels) != 1 or len(before) != 1 or len(after) != 1:
        raise DataFormatError(
            f"{root}: cannot tell the WHU-CD epoch GeoTIFFs apart (before/2012: {[str(p) for p in before]}, "
            f"after/2016: {[str(p) for p in after]}, change label: {[str(p) for p in labels]}); pass them "
            "explicitly: WHUEpochTiles(before, after, label)")
    return before[0], after[0], labels[0]


def read_whu_cd(root, split: str | None = None, *, tile_size: int = 256, validate: bool = True,
                label_coding: str | None = None):
    """WHU-CD: pre-cut tiles, or the distributed epoch GeoTIFFs.

    Tiles: ``A/B/label`` or ``prev/curr/label``, optionally under ``train/val/test``.

    For the epoch GeoTIFFs (found under ``root`` by their names: ``before``/``2012``,
    ``after``/``2016`` and ``change``) the kit's 256-pixel tiles and spatial 8:1:1 split apply
    (:class:`WHUEpochTiles`). Pre-cut tiles keep the split of their folders (or name prefix).
    Labels are 0/255 (``label_coding`` overrides).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataFormatError(f"{root}: WHU-CD folder not found")
    if has_pair_folders(root, LAYOUT):
        return VHRChangeDataset(root, "whu_cd", split, tile_size=None, validate=validate,
                                label_coding=label_coding)
    found = _find_whu_epochs(root)
    if found is None:
        raise DataFormatError(f"{root}: neither WHU-CD tiles (A/B/label or prev/curr/label) nor the epoch "
                              "GeoTIFFs (before/2012, after/2016, change label) were found")
    return WHUEpochTiles(*found, split=split, tile_size=tile_size, validate=validate,
                         label_coding=label_coding or LAYOUT["label_coding"])


class WHUCD(VHRReader):
    """WHU-CD (Ji et al. 2019): Christchurch 2012/2016 aerial RGB (pre-cut tiles or the epoch GeoTIFFs)."""

    key = "whu_cd"
    sources = ("whu_cd",)
    layout = LAYOUT

    @classmethod
    def open_pairs(cls, root, split: str | None = None, *, tile_size: int | None = None,
                   default_split: str = "test", **options):
        """Pre-cut tiles or the epoch GeoTIFFs under ``root`` (:func:`read_whu_cd`; 256 px tiles by default).

        ``default_split`` is not used: tiles keep their folders' split, epoch tiles the kit's split.
        """
        return read_whu_cd(root, split, tile_size=tile_size or 256, **options)
