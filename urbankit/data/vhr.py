"""Readers for very-high-resolution (VHR) building change-detection datasets.

LEVIR-CD, WHU-CD, DSIFN-CD and SYSU-CD come as image pairs (RGB, 8 bit) plus a binary change
label. Each pair becomes one scene of the kit's schema (CONTRIBUTING.md):

* ``optical`` (time=2, band=R,G,B, y, x) float32 = pixel / 255 (reflectance-like 0..1);
* ``change`` (y, x) uint8 0/1, decoded with the dataset's **label coding** (never guessed from
  the values, see below);
* no CRS (PNG/JPEG tiles carry none), except WHU epoch GeoTIFFs that have one;
* attrs ``site`` (the tile name), ``dataset``, ``split``, ``region``, ``source``, ``licence``.

Layouts understood (checked on the real samples in ``../shared/data/real``):

=========== ============================================================ ====================
dataset     as distributed                                               also
=========== ============================================================ ====================
LEVIR-CD    ``<root>/{train,val,test}/{A,B,label}/*.png`` (1024x1024)    flat ``A/ B/ label/``
                                                                         with ``train_*`` /
                                                                         ``val_*`` / ``test_*``
                                                                         names or ``list/``
WHU-CD      two large GeoTIFF epochs (2012, 2016) + change label         pre-cut ``A/B/label`` or
                                                                         ``prev/curr/label``
DSIFN-CD    ``{train,val,test}/{t1,t2,mask}`` (t1/t2 .jpg, mask .png/.tif) ``A/B/label`` (.png)
SYSU-CD     ``{train,val,test}/{time1,time2,label}`` (.png, 256x256)     ``A/B/label``
=========== ============================================================ ====================

Facts of the real samples: LEVIR and DSIFN crops are 256x256 RGB PNG (mode ``RGB``) with
grayscale (mode ``L``) labels coded 0/255; ``levir_cd/label/train_386_0512_0768.png`` has no
change; DSIFN labels are ``.png`` 0/255 too, with large change fractions (up to ~65 %).

Label codings (:data:`LABEL_CODINGS`; a reader knows its dataset's coding, or is told one with
``label_coding=``, and rejects any label file holding other values with a
:class:`~urbankit.errors.DataFormatError` naming the file):

=========== ========= =====================================================================
dataset     coding    source of the fact
=========== ========= =====================================================================
LEVIR-CD    ``0/255`` verified on the real samples (mode ``L`` PNG, 0 and 255 only)
DSIFN-CD    ``0/255`` verified on the real samples (ChangeFormer's DSIFN-CD-256 PNGs)
SYSU-CD     ``0/255`` the dataset's PNG labels (its authors' loader divides by 255) [not
                      verified on a file here]
WHU-CD      ``0/255`` the pre-cut tiles and the change-label GeoTIFF [not verified on a file
                      here]; pass ``label_coding="0/1"`` for copies re-coded 0/1
=========== ========= =====================================================================

``"1/2"`` (1 = no change, 2 = change, as OSCD's label TIFFs) is accepted when asked for. So a
0/1 label read as 0/255 (change would silently be lost), a 1/2 label (an all-1 "no change" tile
would become all change) or values such as {0, 3, 5} raise instead of giving a wrong answer.

Patches: the 1024x1024 LEVIR tiles are cut into 256x256 patches on a non-overlapping 4x4 grid
(7,120/1,024/2,048 train/val/test patches, METHODS.md 7.5) by ``tile_size=256`` or
:func:`tile_scene`. Patch names follow the LEVIR-CD-256 style ``<tile>_<yyyy>_<xxxx>`` with the
patch's pixel offsets (row, then column; the order used by the LEVIR-CD-256 files themselves is
not documented by its authors: [UNVERIFIED]). Partial patches at the right/bottom edge are dropped.

WHU-CD has no official patch split: the default is 256x256 non-overlapping tiles and a
**spatially separated 8:1:1 split in vertical strips** (:data:`WHU_SPLIT`): tile columns in the
western 80 % of the image are train, the next 10 % val, the eastern 10 % test. The split is a
pure function of the tile position, so it is reproducible; ``split_table()`` / ``write_split_file``
record it.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from affine import Affine

from ..errors import ConfigError, DataFormatError
from .raster import image_size, read_grid, read_image
from .reader import Reader
from .schema import make_scene, validate_scene

__all__ = ["DSIFN", "LABEL_CODINGS", "LEVIRCD", "SYSUCD", "VHR_DATASETS", "WHUCD", "WHU_SPLIT", "Pair",
           "VHRChangeDataset", "WHUEpochTiles", "check_label_coding", "decode_label", "read_dsifn",
           "read_levir_cd", "read_pair", "read_sysu_cd", "read_vhr", "read_whu_cd", "tile_scene",
           "write_levir_pair", "write_pair_sample"]

_IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")

#: Per-dataset layout and provenance. ``dates`` are the epochs written to ``time``: known years
#: for WHU (2012/2016) and SYSU (2007/2014); LEVIR pairs span 2002..2018 with per-pair dates that
#: are not distributed, DSIFN dates are not distributed either: placeholders, see ``time_note``.
VHR_DATASETS: dict[str, dict] = {
    "levir_cd": dict(
        title="LEVIR-CD", t1=("A",), t2=("B",), label=("label",), label_coding="0/255",
        dates=("2002-01-01", "2018-01-01"), region="north_america",
        time_note="per-pair acquisition dates are not distributed; time holds the dataset's span 2002..2018",
        source="LEVIR-CD (Chen & Shi 2020), Google Earth imagery, 0.5 m",
        licence="LEVIR-CD terms: academic/research use only"),
    "whu_cd": dict(
        title="WHU-CD", t1=("A", "prev"), t2=("B", "curr"),
        label=("label", "change_label"), label_coding="0/255",
        dates=("2012-01-01", "2016-01-01"), region="oceania",
        time_note="epochs 2012 and 2016 (years only)",
        source=("WHU building change detection (Ji et al. 2019), Christchurch aerial imagery, 0.3 m "
                "(0.075 m original)"),
        licence="WHU building dataset terms: academic use"),
    "dsifn": dict(
        title="DSIFN-CD", t1=("t1", "A"), t2=("t2", "B"), label=("mask", "label"), label_coding="0/255",
        dates=("1970-01-01", "1970-01-02"), region="east_asia",
        time_note="acquisition dates are not distributed; time holds placeholders",
        source="DSIFN-CD (Zhang et al. 2020), Google Earth imagery of six Chinese cities",
        licence="research use (see the authors' repository)"),
    "sysu_cd": dict(
        title="SYSU-CD", t1=("time1", "A"), t2=("time2", "B"), label=("label",), label_coding="0/255",
        dates=("2007-01-01", "2014-01-01"), region="east_asia",
        time_note="epochs 2007 and 2014 (years only)",
        source="SYSU-CD (Shi et al. 2022), Hong Kong aerial imagery, 0.5 m",
        licence="research use (see the authors' repository)"),
}
_ALIASES = {"levir": "levir_cd", "levir-cd": "levir_cd", "whu": "whu_cd", "whu-cd": "whu_cd",
            "dsifn-cd": "dsifn", "dsifn_cd": "dsifn", "sysu": "sysu_cd", "sysu-cd": "sysu_cd"}

#: Label codings: name -> (value meaning "no change", value meaning "change").
LABEL_CODINGS: dict[str, tuple[int, int]] = {"0/255": (0, 255), "0/1": (0, 1), "1/2": (1, 2)}

#: The kit's WHU-CD split (METHODS.md 7.5: no official split; 8:1:1 spatially separated).
WHU_SPLIT = {"tile_size": 256, "axis": "x", "fractions": (0.8, 0.1, 0.1), "order": SPLITS,
             "rule": "tile column index c of n_cols: c < floor(0.8 n) train, c < floor(0.9 n) val, else test"}


def _dataset_key(name: str) -> str:
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in VHR_DATASETS:
        raise DataFormatError(f"unknown VHR dataset {name!r}; known: {', '.join(VHR_DATASETS)}")
    return key


# --------------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------------
def _read_rgb(path: Path, window=None) -> np.ndarray:
    arr = read_image(path, window)
    if arr.shape[0] < 3:
        raise DataFormatError(f"{path}: expected an RGB image (3 channels), got {arr.shape[0]} channel(s)")
    if arr.dtype != np.uint8:
        raise DataFormatError(f"{path}: expected 8-bit RGB (uint8), got {arr.dtype}")
    return arr[:3]


def check_label_coding(coding: str) -> str:
    """Return ``coding`` if it is one of :data:`LABEL_CODINGS`, else raise DataFormatError."""
    if coding not in LABEL_CODINGS:
        raise DataFormatError(f"label_coding must be one of {sorted(LABEL_CODINGS)}, not {coding!r}")
    return coding


def decode_label(values: np.ndarray, coding: str, path: str | os.PathLike) -> np.ndarray:
    """Decode a (H, W) label array of the given coding to uint8 0/1 (1 = change).

    Raises DataFormatError naming ``path`` when the array holds a value the coding does not have
    (e.g. 0/1 values read as ``"0/255"``, 1/2 values, or {0, 3, 5}).
    """
    no_change, change = LABEL_CODINGS[check_label_coding(coding)]
    found = np.unique(values)
    bad = found[(found != no_change) & (found != change)]
    if bad.size:
        others = [c for c, v in LABEL_CODINGS.items() if set(found.tolist()) <= set(v) and c != coding]
        hint = (f"; the values fit label_coding={others[0]!r}: pass it if this copy of the dataset is coded so"
                if others else "")
        raise DataFormatError(
            f"{path}: change label holds value(s) {bad[:8].tolist()} (all values: {found[:8].tolist()}), "
            f"which the {coding!r} coding does not have ({no_change} = no change, {change} = change){hint}")
    return (values == change).astype(np.uint8)


def _read_label(path: Path, coding: str, window=None) -> np.ndarray:
    arr = read_image(path, window)
    if arr.dtype.kind not in "uib":
        raise DataFormatError(f"{path}: expected an integer change label (coding {coding!r}), got {arr.dtype}")
    return decode_label(arr[0], coding, path)  # RGB/RGBA labels: the first channel


# --------------------------------------------------------------------------------------------
# scenes
# --------------------------------------------------------------------------------------------
def _validate(scene):
    validate_scene(scene)
    return scene


def _build_scene(t1: np.ndarray, t2: np.ndarray, change: np.ndarray, *, site: str, dataset: str, split: str,
                 y0: int = 0, x0: int = 0, transform=None, crs=None, extra_attrs: dict | None = None,
                 validate: bool = True):
    """A two-date RGB scene (optical = pixel / 255) through :func:`~urbankit.data.schema.make_scene`.

    Without a CRS, ``x``/``y`` are pixel centres in the parent image's pixel grid (offsets
    ``x0``/``y0``), so that patches of one tile keep their place.
    """
    info = VHR_DATASETS[dataset]
    h, w = change.shape
    optical = np.stack([t1, t2]).astype(np.float32)
    optical /= np.float32(255.0)
    geo = crs is not None and transform is not None
    ds = make_scene(
        optical=optical, change=change, times=list(info["dates"]), bands=["R", "G", "B"],
        transform=transform if geo else None, crs=crs if geo else None,
        x=None if geo else x0 + np.arange(w, dtype=np.float64) + 0.5,
        y=None if geo else y0 + np.arange(h, dtype=np.float64) + 0.5,
        site=site, region=info["region"], dataset=dataset, split=split, source=info["source"],
        licence=info["licence"], attrs={"time_note": info["time_note"], **(extra_attrs or {})},
        validate=validate)
    ds["optical"].attrs.update(units="1", long_name="RGB / 255")
    ds["change"].attrs.update(long_name="building change (1 = change)")
    return ds


def read_pair(t1: str | os.PathLike, t2: str | os.PathLike, label: str | os.PathLike | None = None, *,
              site: str | None = None, dataset: str = "levir_cd", split: str = "test", validate: bool = True,
              label_coding: str | None = None):
    """Read one VHR pair (two RGB images + change label) into a scene.

    ``label=None`` gives an all-zero ``change`` with ``attrs['labelled'] = False``.
    ``label_coding``: ``"0/255"``, ``"0/1"`` or ``"1/2"`` (:data:`LABEL_CODINGS`); None = the
    dataset's coding (:data:`VHR_DATASETS`). Raises DataFormatError naming the file for
    unreadable/truncated images, non-RGB images, images of different sizes, labels whose size
    differs from the images and labels holding values the coding does not have.
    """
    dataset = _dataset_key(dataset)
    coding = check_label_coding(label_coding or VHR_DATASETS[dataset]["label_coding"])
    t1, t2 = Path(t1), Path(t2)
    a, b = _read_rgb(t1), _read_rgb(t2)
    if a.shape != b.shape:
        raise DataFormatError(f"{t2}: size {b.shape[1]}x{b.shape[2]} differs from {t1} "
                              f"({a.shape[1]}x{a.shape[2]})")
    if label is not None:
        label = Path(label)
        change = _read_label(label, coding)
        if change.shape != a.shape[1:]:
            raise DataFormatError(f"{label}: label size {change.shape[0]}x{change.shape[1]} differs from the "
                                  f"image size {a.shape[1]}x{a.shape[2]} of {t1}")
    else:
        change = np.zeros(a.shape[1:], np.uint8)
    name = site or t1.stem
    tile, r0, c0 = _parse_patch_name(dataset, name, a.shape[1])
    return _build_scene(a, b, change, site=name, dataset=dataset, split=split, y0=r0, x0=c0,
                        extra_attrs={"labelled": label is not None, "tile": tile, "row_off": r0,
                                     "col_off": c0, "label_coding": coding},
                        validate=validate)


def _parse_patch_name(dataset: str, name: str, size: int) -> tuple[str, int, int]:
    """(parent tile, row offset, column offset) encoded in a pre-cut patch name, else (name, 0, 0).

    LEVIR-CD-256: ``<tile>_<yyyy>_<xxxx>`` (pixel offsets, read as row then column [UNVERIFIED]);
    DSIFN-CD-256 (ChangeFormer ``dsifn_cd_256.m``): ``<image>_<k>``, k = 1..4 numbering the 2x2
    grid of 256-pixel patches of a 512x512 image row by row.
    """
    m = re.fullmatch(r"(.+)_(\d{4})_(\d{4})", name)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    if dataset == "dsifn":
        m = re.fullmatch(r"(\d+)_([1-4])", name)
        if m:
            k = int(m.group(2)) - 1
            return m.group(1), (k // 2) * size, (k % 2) * size
    return name, 0, 0


def tile_scene(scene, size: int = 256) -> list:
    """Cut a scene into non-overlapping ``size`` x ``size`` patches (row-major, partial edges dropped).

    Patch ``site`` names are ``<site>_<yyyy>_<xxxx>`` (pixel offsets, LEVIR-CD-256 style); attrs
    ``tile``, ``row_off``, ``col_off`` record the parent and the offsets. A scene exactly ``size``
    big is returned unchanged (in a list). Works for any schema scene (georeferenced or not).
    """
    if size <= 0:
        raise DataFormatError(f"tile size must be positive, not {size}")
    h, w = scene.sizes["y"], scene.sizes["x"]
    site = scene.attrs.get("site", "scene")
    if h < size or w < size:
        raise DataFormatError(f"site {site!r}: scene of {h}x{w} pixels is smaller than one "
                              f"{size}x{size} tile")
    if h == size and w == size:
        return [scene]
    has_crs = False
    try:
        has_crs = scene.rio.crs is not None
    except Exception:  # rioxarray not imported / no spatial dims
        has_crs = False
    out = []
    for r in range(0, h - size + 1, size):
        for c in range(0, w - size + 1, size):
            sub = scene.isel(y=slice(r, r + size), x=slice(c, c + size))
            if has_crs:
                sub = sub.rio.write_transform(sub.rio.transform(recalc=True))
            sub.attrs = dict(scene.attrs)
            base_r = int(scene.attrs.get("row_off", 0))
            base_c = int(scene.attrs.get("col_off", 0))
            sub.attrs.update(site=f"{site}_{r:04d}_{c:04d}", tile=scene.attrs.get("tile", site),
                             row_off=base_r + r, col_off=base_c + c)
            out.append(sub)
    return out


# --------------------------------------------------------------------------------------------
# folder layouts
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Pair:
    """One image pair on disk."""

    name: str
    split: str
    t1: Path
    t2: Path
    label: Path | None


def _images_by_stem(folder: Path) -> dict[str, Path]:
    files = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in _IMAGE_EXT and not p.name.startswith("."):
            files.setdefault(p.stem, p)
    return files


def _find_dir(base: Path, names: Sequence[str]) -> Path | None:
    for n in names:
        if (base / n).is_dir():
            return base / n
    return None


def _pairs_in(base: Path, info: dict, split_of, require_label: bool) -> list[Pair]:
    d1, d2, dl = _find_dir(base, info["t1"]), _find_dir(base, info["t2"]), _find_dir(base, info["label"])
    if d1 is None or d2 is None:
        return []
    a, b = _images_by_stem(d1), _images_by_stem(d2)
    lab = _images_by_stem(dl) if dl is not None else {}
    if not a:
        raise DataFormatError(f"{d1}: folder holds no images ({', '.join(_IMAGE_EXT)})")
    if dl is None and require_label:
        raise DataFormatError(f"{base}: no label folder ({' or '.join(info['label'])}) beside {d1.name}/")
    pairs = []
    for stem, p1 in a.items():
        if stem not in b:
            raise DataFormatError(f"{p1}: no matching image {stem}.* in {d2}")
        if dl is not None and stem not in lab:
            raise DataFormatError(f"{p1}: no matching label {stem}.* in {dl}")
        pairs.append(Pair(stem, split_of(stem), p1, b[stem], lab.get(stem)))
    return pairs


def _read_lists(root: Path) -> dict[str, str]:
    out = {}
    for split in SPLITS:
        f = root / "list" / f"{split}.txt"
        if f.is_file():
            for line in f.read_text().split():
                out[Path(line.strip()).stem] = split
    return out


def _discover(root: Path, dataset: str, default_split: str, require_label: bool) -> list[Pair]:
    info = VHR_DATASETS[dataset]
    if not root.is_dir():
        raise DataFormatError(f"{root}: {info['title']} folder not found")
    pairs: list[Pair] = []
    for split in SPLITS:
        if (root / split).is_dir():
            pairs += _pairs_in(root / split, info, lambda _s, sp=split: sp, require_label)
    if not pairs:
        lists = _read_lists(root)

        def split_of(stem: str) -> str:
            if stem in lists:
                return lists[stem]
            m = re.match(r"(train|val|test)_", stem)
            return m.group(1) if m else default_split

        pairs = _pairs_in(root, info, split_of, require_label)
    if not pairs:
        raise DataFormatError(
            f"{root}: no {info['title']} image pairs found; expected {{train,val,test}}/"
            f"{{{info['t1'][0]},{info['t2'][0]},{info['label'][0]}}}/ or {info['t1'][-1]}/ "
            f"{info['t2'][-1]}/ {info['label'][-1]}/ folders")
    return pairs


class VHRChangeDataset(Sequence):
    """The pairs of one VHR change dataset under ``root``; each item is a schema scene.

    ``split``: keep only ``"train"``/``"val"``/``"test"`` (None: all). ``tile_size``: cut each pair
    into non-overlapping patches (e.g. 256 for the 1024x1024 LEVIR tiles; items are then patches).
    ``default_split``: the split of pairs whose split is recorded nowhere (no split folders, no
    ``list/`` files, no ``train_``/``val_``/``test_`` prefix; e.g. the flat DSIFN sample folder):
    ``"test"`` so that such crops are used for evaluation, never silently for training.
    ``label_coding``: how the label files are coded (None = the dataset's, see the module
    docstring); files with other values raise DataFormatError naming the file.
    Never imports torch; the torch layer wraps it.
    """

    def __init__(self, root: str | os.PathLike, dataset: str, split: str | None = None, *,
                 tile_size: int | None = None, default_split: str = "test", validate: bool = True,
                 require_label: bool = True, label_coding: str | None = None):
        self.root = Path(root).expanduser()
        self.dataset = _dataset_key(dataset)
        self.label_coding = check_label_coding(label_coding or VHR_DATASETS[self.dataset]["label_coding"])
        if split is not None and split not in SPLITS:
            raise DataFormatError(f"split must be one of {SPLITS} or None, not {split!r}")
        self.split = split
        self.tile_size = tile_size
        self.validate = validate
        pairs = _discover(self.root, self.dataset, default_split, require_label)
        if split is not None:
            pairs = [p for p in pairs if p.split == split]
            if not pairs:
                title = VHR_DATASETS[self.dataset]["title"]
                raise DataFormatError(f"{self.root}: no {title} pairs in split {split!r}")
        self.pairs = pairs
        # item index -> (pair index, y0, x0)
        self._items: list[tuple[int, int, int]] = []
        self._sizes: dict[int, tuple[int, int]] = {}
        for i, p in enumerate(pairs):
            if tile_size is None:
                self._items.append((i, 0, 0))
                continue
            h, w = self._sizes[i] = image_size(p.t1)
            if h < tile_size or w < tile_size:
                raise DataFormatError(f"{p.t1}: image of {h}x{w} is smaller than tile_size={tile_size}")
            for r in range(0, h - tile_size + 1, tile_size):
                for c in range(0, w - tile_size + 1, tile_size):
                    self._items.append((i, r, c))
        self._cache: tuple[int, object] | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _pair_scene(self, i: int):
        if self._cache is not None and self._cache[0] == i:
            return self._cache[1]
        p = self.pairs[i]
        scene = read_pair(p.t1, p.t2, p.label, site=p.name, dataset=self.dataset, split=p.split,
                          validate=self.validate and self.tile_size is None, label_coding=self.label_coding)
        self._cache = (i, scene)
        return scene

    def __getitem__(self, index: int):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} items")
        i, r, c = self._items[index]
        scene = self._pair_scene(i)
        if self.tile_size is None:
            return scene
        h, w = scene.sizes["y"], scene.sizes["x"]
        if (h, w) == (self.tile_size, self.tile_size):
            return _validate(scene) if self.validate else scene
        if h < r + self.tile_size or w < c + self.tile_size:
            raise DataFormatError(f"{self.pairs[i].t1}: image is {h}x{w}, smaller than its header said")
        s = self.tile_size
        sub = scene.isel(y=slice(r, r + s), x=slice(c, c + s))
        sub.attrs = dict(scene.attrs)
        sub.attrs.update(site=f"{scene.attrs['site']}_{r:04d}_{c:04d}", tile=scene.attrs["site"],
                         row_off=r, col_off=c)
        return _validate(sub) if self.validate else sub

    def __iter__(self) -> Iterator:
        for i in range(len(self)):
            yield self[i]

    @property
    def names(self) -> list[str]:
        """Item names: pair names, or ``<pair>_<yyyy>_<xxxx>`` patch names with ``tile_size``."""
        out = []
        for i, r, c in self._items:
            name = self.pairs[i].name
            if self.tile_size is not None:
                if self._sizes[i] != (self.tile_size, self.tile_size):
                    name = f"{name}_{r:04d}_{c:04d}"
            out.append(name)
        return out

    def scene(self, name: str):
        """The item called ``name`` (pair or patch name)."""
        try:
            index = self.names.index(name)
        except ValueError:
            raise DataFormatError(f"{self.root}: no item named {name!r}") from None
        return self[index]  # reading errors (a DataFormatError is a ValueError) pass through

    def table(self):
        """A pandas DataFrame: one row per pair (name, split, t1, t2, label)."""
        import pandas as pd

        return pd.DataFrame([dict(name=p.name, split=p.split, t1=str(p.t1), t2=str(p.t2),
                                  label=str(p.label) if p.label else None) for p in self.pairs])

    def __repr__(self) -> str:
        return (f"VHRChangeDataset({VHR_DATASETS[self.dataset]['title']}, root={str(self.root)!r}, "
                f"split={self.split!r}, pairs={len(self.pairs)}, items={len(self)})")


# --------------------------------------------------------------------------------------------
# WHU-CD as distributed: two large GeoTIFF epochs + change label
# --------------------------------------------------------------------------------------------
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
        a = _read_rgb(self.paths[0], window=rows_cols)
        b = _read_rgb(self.paths[1], window=rows_cols)
        try:
            change = _read_label(self.paths[2], self.label_coding, window=rows_cols)
        except DataFormatError as exc:
            raise DataFormatError(f"{exc} (tile whu_{y0:05d}_{x0:05d})") from exc
        tr = self.transform @ Affine.translation(x0, y0) if self.transform is not None else None
        crs = self.crs if self.crs else None
        return _build_scene(a, b, change, site=f"whu_{y0:05d}_{x0:05d}", dataset="whu_cd", split=split,
                            y0=y0, x0=x0, transform=tr if crs else None, crs=crs,
                            extra_attrs={"tile": "whu", "row_off": y0, "col_off": x0,
                                         "split_rule": WHU_SPLIT["rule"], "label_coding": self.label_coding},
                            validate=self.validate)

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


# --------------------------------------------------------------------------------------------
# entry points
# --------------------------------------------------------------------------------------------
def read_vhr(root, dataset: str, split: str | None = None, *, tile_size: int | None = None,
             default_split: str = "test", validate: bool = True, label_coding: str | None = None):
    """Open any of the four datasets (``levir_cd``, ``whu_cd``, ``dsifn``, ``sysu_cd``) under ``root``.

    ``label_coding``: None = the dataset's coding (module docstring), or ``"0/255"``, ``"0/1"``,
    ``"1/2"``.
    """
    if _dataset_key(dataset) == "whu_cd":
        return read_whu_cd(root, split, tile_size=tile_size or 256, validate=validate, label_coding=label_coding)
    return VHRChangeDataset(root, dataset, split, tile_size=tile_size, default_split=default_split,
                            validate=validate, label_coding=label_coding)


def read_levir_cd(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
                  label_coding: str | None = None) -> VHRChangeDataset:
    """LEVIR-CD: official ``train/val/test`` folders, or flat ``A/ B/ label/`` crops.

    The split of flat crops is their name prefix (``train_``/``val_``/``test_``) or a ``list/`` file.

    ``tile_size=256`` cuts the 1024x1024 tiles into the standard 16 patches each. Labels are
    0/255 (``label_coding`` overrides).
    """
    return VHRChangeDataset(root, "levir_cd", split, tile_size=tile_size, validate=validate,
                            label_coding=label_coding)


def read_dsifn(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
               default_split: str = "test", label_coding: str | None = None) -> VHRChangeDataset:
    """DSIFN-CD: ``{train,val,test}/{t1,t2,mask}`` as distributed, or ``A/ B/ label/`` crops (0/255)."""
    return VHRChangeDataset(root, "dsifn", split, tile_size=tile_size, validate=validate,
                            default_split=default_split, label_coding=label_coding)


def read_sysu_cd(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
                 label_coding: str | None = None) -> VHRChangeDataset:
    """SYSU-CD: ``{train,val,test}/{time1,time2,label}``, or ``A/ B/ label/`` folders.

    256x256 PNG; 12,000/4,000/4,000 pairs; labels 0/255 (``label_coding`` overrides).
    """
    return VHRChangeDataset(root, "sysu_cd", split, tile_size=tile_size, validate=validate,
                            label_coding=label_coding)


def _has_tile_folders(root: Path, info: dict) -> bool:
    bases = [root] + [root / s for s in SPLITS if (root / s).is_dir()]
    return any(_find_dir(b, info["t1"]) is not None and _find_dir(b, info["t2"]) is not None for b in bases)


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
    info = VHR_DATASETS["whu_cd"]
    if _has_tile_folders(root, info):
        return VHRChangeDataset(root, "whu_cd", split, tile_size=None, validate=validate,
                                label_coding=label_coding)
    found = _find_whu_epochs(root)
    if found is None:
        raise DataFormatError(f"{root}: neither WHU-CD tiles (A/B/label or prev/curr/label) nor the epoch "
                              "GeoTIFFs (before/2012, after/2016, change label) were found")
    return WHUEpochTiles(*found, split=split, tile_size=tile_size, validate=validate,
                         label_coding=label_coding or info["label_coding"])


# --------------------------------------------------------------------------------------------
# writing LEVIR-style pairs (synthetic twins, exercises)
# --------------------------------------------------------------------------------------------
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


# --------------------------------------------------------------------------------------------
# synthetic samples in each dataset's layout (LEVIR-CD's is embedded in data_samples/levir)
# --------------------------------------------------------------------------------------------
_SAMPLE_REGIONS = ("north_america", "south_asia", "sub_saharan_africa", "north_america")


def _synthetic_pair(i: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(t1 RGB (H, W, 3) uint8, t2 RGB, label (H, W) 0/255) of synthetic twin number ``i``."""
    from .synthetic import make_site

    scene = make_site(site=f"levir-{i}", size=size, n_dates=8, region=_SAMPLE_REGIONS[i % 4], seed=seed + 40 + i,
                      growth=0.08, pixel_size=0.5, looks=None, modalities=("optical",), crs=None)
    rgb = scene.optical.sel(band=["B04", "B03", "B02"]).values[[0, -1]]  # (2, 3, H, W)
    img = np.clip(rgb / 0.3 * 255.0, 0, 255).round().astype(np.uint8).transpose(0, 2, 3, 1)
    return img[0], img[1], (scene.change.values > 0).astype(np.uint8) * 255


def write_pair_sample(root: str | os.PathLike, dataset: str, *, n_pairs: int = 4, size: int = 256, seed: int = 0,
                      flat: bool = False) -> Path:
    """Write ``n_pairs`` synthetic pairs (8-bit PNG, labels 0/255) in a dataset's folder layout.

    ``flat=True``: ``root/{t1,t2,label}/train_<k>.png`` (LEVIR's flat layout, the embedded
    sample); else ``root/<split>/{t1,t2,label}/<k>.png`` with splits cycling train, val, test.
    Folder names are the dataset's first ones in :data:`VHR_DATASETS`. Returns ``root``.
    """
    from .sample_files import write_png

    info, root = VHR_DATASETS[_dataset_key(dataset)], Path(root)
    for i in range(n_pairs):
        a, b, label = _synthetic_pair(i, size, seed)
        base, name = (root, f"train_{i + 1}.png") if flat else (root / SPLITS[i % 3], f"{i + 1}.png")
        for folder, arr in ((info["t1"][0], a), (info["t2"][0], b), (info["label"][0], label)):
            write_png(base / folder / name, arr)
    return root


# --------------------------------------------------------------------------------------------
# the readers: one class per dataset, one shape (urbankit.data.reader)
# --------------------------------------------------------------------------------------------
class _VHRReader(Reader):
    """A VHR change dataset: sites are pair names (or patch names with ``tile_size``).

    Args:
        root: the dataset folder (layouts in the module docstring).
        split: ``"all"``, ``"train"``, ``"val"`` or ``"test"``.
        bands: None or ``("R", "G", "B")`` (the images are RGB).
        download, checksum: see :mod:`urbankit.data.reader`.
        tile_size: cut pairs into ``tile_size`` patches (WHU epoch GeoTIFFs: 256 by default).
        **options: further :class:`VHRChangeDataset` keywords (``label_coding``, ``default_split``).
    """

    splits = SPLITS

    def __init__(self, root, split: str = "all", bands=None, download: bool = False, checksum: bool = True, *,
                 tile_size: int | None = None, **options):
        super().__init__(root, split, bands, download, checksum)
        if self.bands not in (None, ("R", "G", "B")):
            raise ConfigError(f"{self.title}: images are RGB; bands must be None or ('R', 'G', 'B'), "
                              f"got {bands!r}")
        self.pairs = read_vhr(self.root, self.key, None if split == "all" else split, tile_size=tile_size,
                              **options)

    @property
    def sites(self) -> list[str]:
        """Pair (or patch) names."""
        return list(self.pairs.names)

    def read(self, site: str):
        """The pair (or patch) ``site`` as a two-date RGB scene."""
        return self.pairs.scene(site)

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write 3 synthetic 64 x 64 pairs (one per split) to ``folder/<key>``; returns that folder."""
        return write_pair_sample(Path(folder) / cls.key, cls.key, n_pairs=3, size=64, seed=seed)


class LEVIRCD(_VHRReader):
    """LEVIR-CD (Chen & Shi 2020): 637 pairs of 1024 x 1024 Google Earth RGB, 0.5 m; labels 0/255."""

    key = "levir_cd"
    title = "LEVIR-CD"
    sources = ("levir_cd_train", "levir_cd_val", "levir_cd_test")
    sample_folder = "levir"

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write the embedded LEVIR sample (4 flat 256 x 256 train pairs) to ``folder/levir``."""
        return write_pair_sample(Path(folder) / "levir", cls.key, n_pairs=4, size=256, seed=seed, flat=True)


class WHUCD(_VHRReader):
    """WHU-CD (Ji et al. 2019): Christchurch 2012/2016 aerial RGB (pre-cut tiles or the epoch GeoTIFFs)."""

    key = "whu_cd"
    title = "WHU-CD"
    sources = ("whu_cd",)


class DSIFN(_VHRReader):
    """DSIFN-CD (Zhang et al. 2020): Google Earth pairs of six Chinese cities."""

    key = "dsifn"
    title = "DSIFN-CD"
    sources = ("dsifn",)


class SYSUCD(_VHRReader):
    """SYSU-CD (Shi et al. 2022): Hong Kong 2007/2014 aerial pairs, 256 x 256."""

    key = "sysu_cd"
    title = "SYSU-CD"
    sources = ("sysu_cd",)
