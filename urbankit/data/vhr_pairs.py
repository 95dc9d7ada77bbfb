"""What the four VHR change datasets share: pair files -> scenes, label codings, patches, layouts.

LEVIR-CD, WHU-CD, DSIFN-CD and SYSU-CD come as image pairs (RGB, 8 bit) plus a binary change
label; each dataset has its own module (:mod:`~urbankit.data.levir_cd`,
:mod:`~urbankit.data.whu_cd`, :mod:`~urbankit.data.dsifn`, :mod:`~urbankit.data.sysu_cd`) with
its folder layout, label coding, provenance and reader class. This module holds the logic they
share. Each pair becomes one scene of the kit's schema:

* ``optical`` (time=2, band=R,G,B, y, x) float32 = pixel / 255 (reflectance-like 0..1);
* ``change`` (y, x) uint8 0/1, decoded with the dataset's **label coding** (never guessed from
  the values, see below);
* no CRS (PNG/JPEG tiles carry none), except WHU epoch GeoTIFFs that have one;
* attrs ``site`` (the tile name), ``dataset``, ``split``, ``region``, ``source``, ``licence``.

Label codings (:data:`LABEL_CODINGS`): a reader knows its dataset's coding (its ``layout``), or is
told one with ``label_coding=``, and rejects any label file holding other values with a
:class:`~urbankit.errors.DataFormatError` naming the file. ``"1/2"`` (1 = no change, 2 = change,
as OSCD's label TIFFs) is accepted when asked for. So a 0/1 label read as 0/255 (change would
silently be lost), a 1/2 label (an all-1 "no change" tile would become all change) or values such
as {0, 3, 5} raise instead of giving a wrong answer.

A dataset's **layout** (the ``layout`` dict of its reader class) names its folders (``t1``,
``t2``, ``label``: the names as distributed first, then alternatives such as ``A``/``B``), its
``label_coding``, the ``dates`` written to ``time`` (with a ``time_note``), ``region``,
``source`` and ``licence``; optionally ``patch_grid`` (pre-cut ``<image>_<k>`` patch names).

Patches: :func:`tile_scene` (or ``tile_size=``) cuts a pair into non-overlapping ``size`` x
``size`` patches named ``<tile>_<yyyy>_<xxxx>`` (LEVIR-CD-256 style; the patch's pixel offsets,
row then column). Partial patches at the right/bottom edge are dropped.
"""
from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import ConfigError, DataFormatError
from .raster import image_size, read_image
from .reader import Reader, reader_for
from .schema import make_scene, validate_scene

__all__ = ["LABEL_CODINGS", "SPLITS", "VHR_KEYS", "Pair", "VHRChangeDataset", "VHRReader", "build_pair_scene",
           "check_label_coding", "dataset_key", "dataset_layout", "decode_label", "has_pair_folders", "read_label",
           "read_pair", "read_rgb", "read_vhr", "tile_scene", "write_pair_sample"]

IMAGE_EXT = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
SPLITS = ("train", "val", "test")
#: The reader keys of the VHR change datasets (each in its own module, see :mod:`urbankit.data.reader`).
VHR_KEYS = ("levir_cd", "whu_cd", "dsifn", "sysu_cd")
_ALIASES = {"levir": "levir_cd", "levir-cd": "levir_cd", "whu": "whu_cd", "whu-cd": "whu_cd",
            "dsifn-cd": "dsifn", "dsifn_cd": "dsifn", "sysu": "sysu_cd", "sysu-cd": "sysu_cd"}

#: Label codings: name -> (value meaning "no change", value meaning "change").
LABEL_CODINGS: dict[str, tuple[int, int]] = {"0/255": (0, 255), "0/1": (0, 1), "1/2": (1, 2)}


def dataset_key(name: str) -> str:
    """The reader key of a VHR dataset name or alias (``"LEVIR-CD"`` -> ``"levir_cd"``)."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in VHR_KEYS:
        raise DataFormatError(f"unknown VHR dataset {name!r}; known: {', '.join(VHR_KEYS)}")
    return key


def dataset_layout(name: str) -> dict:
    """The layout and provenance of a VHR dataset (its reader class's ``layout``; module docstring)."""
    return reader_for(dataset_key(name)).layout


# --------------------------------------------------------------------------------------------
# file readers
# --------------------------------------------------------------------------------------------
def read_rgb(path: Path, window=None) -> np.ndarray:
    """An 8-bit RGB image (or a window of it) as (3, H, W) uint8; DataFormatError naming ``path`` else."""
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


def read_label(path: Path, coding: str, window=None) -> np.ndarray:
    """A change label file (or a window) decoded with ``coding`` to (H, W) uint8 0/1 (:func:`decode_label`)."""
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


def build_pair_scene(t1: np.ndarray, t2: np.ndarray, change: np.ndarray, *, site: str, dataset: str, split: str,
                     y0: int = 0, x0: int = 0, transform=None, crs=None, extra_attrs: dict | None = None,
                     validate: bool = True):
    """A two-date RGB scene (optical = pixel / 255) through :func:`~urbankit.data.schema.make_scene`.

    Without a CRS, ``x``/``y`` are pixel centres in the parent image's pixel grid (offsets
    ``x0``/``y0``), so that patches of one tile keep their place.
    """
    info = dataset_layout(dataset)
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
    dataset's coding (its ``layout``). Raises DataFormatError naming the file for
    unreadable/truncated images, non-RGB images, images of different sizes, labels whose size
    differs from the images and labels holding values the coding does not have.
    """
    dataset = dataset_key(dataset)
    coding = check_label_coding(label_coding or dataset_layout(dataset)["label_coding"])
    t1, t2 = Path(t1), Path(t2)
    a, b = read_rgb(t1), read_rgb(t2)
    if a.shape != b.shape:
        raise DataFormatError(f"{t2}: size {b.shape[1]}x{b.shape[2]} differs from {t1} "
                              f"({a.shape[1]}x{a.shape[2]})")
    if label is not None:
        label = Path(label)
        change = read_label(label, coding)
        if change.shape != a.shape[1:]:
            raise DataFormatError(f"{label}: label size {change.shape[0]}x{change.shape[1]} differs from the "
                                  f"image size {a.shape[1]}x{a.shape[2]} of {t1}")
    else:
        change = np.zeros(a.shape[1:], np.uint8)
    name = site or t1.stem
    tile, r0, c0 = _parse_patch_name(dataset_layout(dataset), name, a.shape[1])
    return build_pair_scene(a, b, change, site=name, dataset=dataset, split=split, y0=r0, x0=c0,
                            extra_attrs={"labelled": label is not None, "tile": tile, "row_off": r0,
                                         "col_off": c0, "label_coding": coding},
                            validate=validate)


def _parse_patch_name(layout: dict, name: str, size: int) -> tuple[str, int, int]:
    """(parent tile, row offset, column offset) encoded in a pre-cut patch name, else (name, 0, 0).

    ``<tile>_<yyyy>_<xxxx>``: pixel offsets, row then column (LEVIR-CD-256 style). With a layout's
    ``patch_grid`` n: ``<image>_<k>``, k = 1..n*n numbering the n x n grid of patches row by row.
    """
    m = re.fullmatch(r"(.+)_(\d{4})_(\d{4})", name)
    if m:
        return m.group(1), int(m.group(2)), int(m.group(3))
    n = layout.get("patch_grid")
    m = re.fullmatch(r"(\d+)_(\d+)", name) if n else None
    if m and 1 <= int(m.group(2)) <= n * n:
        k = int(m.group(2)) - 1
        return m.group(1), (k // n) * size, (k % n) * size
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
        if p.is_file() and p.suffix.lower() in IMAGE_EXT and not p.name.startswith("."):
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
        raise DataFormatError(f"{d1}: folder holds no images ({', '.join(IMAGE_EXT)})")
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
    info = dataset_layout(dataset)
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
        self.dataset = dataset_key(dataset)
        self.label_coding = check_label_coding(label_coding or dataset_layout(self.dataset)["label_coding"])
        if split is not None and split not in SPLITS:
            raise DataFormatError(f"split must be one of {SPLITS} or None, not {split!r}")
        self.split = split
        self.tile_size = tile_size
        self.validate = validate
        pairs = _discover(self.root, self.dataset, default_split, require_label)
        if split is not None:
            pairs = [p for p in pairs if p.split == split]
            if not pairs:
                title = dataset_layout(self.dataset)["title"]
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
        return (f"VHRChangeDataset({dataset_layout(self.dataset)['title']}, root={str(self.root)!r}, "
                f"split={self.split!r}, pairs={len(self.pairs)}, items={len(self)})")


def has_pair_folders(root: Path, info: dict) -> bool:
    """Whether ``root`` (or one of its split folders) holds the ``t1`` and ``t2`` folders of ``info``."""
    bases = [root] + [root / s for s in SPLITS if (root / s).is_dir()]
    return any(_find_dir(b, info["t1"]) is not None and _find_dir(b, info["t2"]) is not None for b in bases)


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
    Folder names are the dataset's first ones in its ``layout``. Returns ``root``.
    """
    from .sample_files import write_png

    info, root = dataset_layout(dataset), Path(root)
    for i in range(n_pairs):
        a, b, label = _synthetic_pair(i, size, seed)
        base, name = (root, f"train_{i + 1}.png") if flat else (root / SPLITS[i % 3], f"{i + 1}.png")
        for folder, arr in ((info["t1"][0], a), (info["t2"][0], b), (info["label"][0], label)):
            write_png(base / folder / name, arr)
    return root

# --------------------------------------------------------------------------------------------
# the readers: one class per dataset (in its own module), one shape (urbankit.data.reader)
# --------------------------------------------------------------------------------------------
class VHRReader(Reader):
    """A VHR change dataset: sites are pair names (or patch names with ``tile_size``).

    Args:
        root: the dataset folder (layouts in the dataset module's docstring).
        split: ``"all"``, ``"train"``, ``"val"`` or ``"test"``.
        bands: None or ``("R", "G", "B")`` (the images are RGB).
        download, checksum: see :mod:`urbankit.data.reader`.
        tile_size: cut pairs into ``tile_size`` patches (WHU epoch GeoTIFFs: 256 by default).
        **options: further :class:`VHRChangeDataset` keywords (``label_coding``, ``default_split``).
    """

    splits = SPLITS
    #: folders, label coding, dates and provenance (module docstring); set by each dataset
    layout: ClassVar[dict[str, Any]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        if cls.layout:  # the title is the layout's (one home)
            cls.title = cls.layout["title"]
        super().__init_subclass__(**kwargs)

    def __init__(self, root, split: str = "all", bands=None, download: bool = False, checksum: bool = True, *,
                 tile_size: int | None = None, **options):
        super().__init__(root, split, bands, download, checksum)
        if self.bands not in (None, ("R", "G", "B")):
            raise ConfigError(f"{self.title}: images are RGB; bands must be None or ('R', 'G', 'B'), "
                              f"got {bands!r}")
        self.pairs = self.open_pairs(self.root, None if split == "all" else split, tile_size=tile_size, **options)

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

    @classmethod
    def open_pairs(cls, root, split: str | None = None, *, tile_size: int | None = None, **options):
        """The dataset's pairs under ``root`` as a :class:`VHRChangeDataset` (``split`` None: all)."""
        return VHRChangeDataset(root, cls.key, split, tile_size=tile_size, **options)


def read_vhr(root, dataset: str, split: str | None = None, *, tile_size: int | None = None,
             default_split: str = "test", validate: bool = True, label_coding: str | None = None):
    """Open any of the four datasets (``levir_cd``, ``whu_cd``, ``dsifn``, ``sysu_cd``) under ``root``.

    ``label_coding``: None = the dataset's coding (its module), or ``"0/255"``, ``"0/1"``,
    ``"1/2"``. WHU-CD's epoch GeoTIFFs are cut into 256-pixel tiles unless ``tile_size`` says otherwise.
    """
    return reader_for(dataset_key(dataset)).open_pairs(root, split, tile_size=tile_size, default_split=default_split,
                                                       validate=validate, label_coding=label_coding)
