"""Reader of Global Human Settlement Layer (GHSL) grids {cite}`pesaresi2023ghsl`.

Layers and the coding each file must have (values outside it raise :class:`DataFormatError`
naming the file):

=========  ===========================================  ========================================
product    value per cell                               1 km aggregation (:meth:`GHSL.read_1km`)
=========  ===========================================  ========================================
POP        residential population (persons)             sum
BUILT_S    built-up surface (m2), 0..cell area          sum, then / cell area = built-up share
LAND       permanent land: share 0..1 (``land_coding``  area-weighted mean share
           ``"share"``) or m2 of land (``"m2"``)
SMOD       GHS-SMOD level-2 class (10..30)              none (already 1 km): never averaged
=========  ===========================================  ========================================

File names follow the GHSL distribution, e.g. ``GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0.tif``
or a tile ``..._V1_0_R4_C19.tif``; the reader scans ``root`` (recursively) for them. ``sites``
are the tiles found (``"R4_C19"``, or ``"GLOBE"`` for a global/cropped file). GHSL grids are
in World Mollweide (ESRI:54009, equal-area: a 100 m cell is 0.01 km2) or WGS84 (EPSG:4326).

:class:`GHSLBuiltEpochs` reads the single-band "first epoch built" raster (value = the first
epoch 1975..2030 in which the cell is built-up, e.g. the GOSTurban tutorial's ``GHSL.tif``).
Never imports torch.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..errors import ConfigError, DataFormatError
from . import population_grids as pg
from .reader import Reader

__all__ = ["GHSL", "GHSLBuiltEpochs", "PRODUCTS", "SMOD_CODES"]

#: what each product's values mean
PRODUCTS = {
    "POP": "residential population (persons per cell)",
    "BUILT_S": "built-up surface (m2 per cell)",
    "LAND": "permanent land (share of the cell, or m2)",
    "SMOD": "settlement model, DEGURBA level-2 class",
}
#: valid GHS-SMOD level-2 codes
SMOD_CODES = (10, 11, 12, 13, 21, 22, 23, 30)
_NAME = re.compile(
    r"^GHS_(?P<product>POP|BUILT_S|LAND|SMOD)_E(?P<epoch>\d{4})_GLOBE_(?P<release>R\d{4}A)_"
    r"(?P<crs>\d+)_(?P<res>[0-9a-z]+)(?:_V\d+_\d+)?(?:_(?P<tile>R\d+_C\d+))?\.tif$",
    re.IGNORECASE,
)


class GHSL(pg.FileTable, Reader):
    """GHSL layers of one product found under a folder.

    :meth:`read` gives a site (tile) as a scene over every epoch found: ``BUILT_S`` as
    ``buildings`` (built-up share 0..1 = m2 / cell area), ``POP`` as ``population``;
    :meth:`read_epoch` gives one epoch's grid of any product.

    Args:
        root: folder holding GHSL GeoTIFFs (searched recursively).
        split: ``"all"`` only (GHSL has no splits).
        bands: None (one band per file).
        download, checksum: see :mod:`urbankit.data.reader`.
        product: ``POP``, ``BUILT_S``, ``LAND`` or ``SMOD`` (:data:`PRODUCTS`).
        release: keep only one release (e.g. ``R2023A``); None keeps all.
        land_coding: LAND values: ``share`` (0..1) or ``m2`` of land per cell.
        bbox, bbox_crs: clip the scenes of :meth:`read` to (left, bottom, right, top).

    Attributes:
        files: DataFrame of the files found (path, epoch, release, resolution, site).
    """

    key = "ghsl"
    title = "GHSL"
    sources = ("ghsl_built_s_2020_100m", "ghsl_pop_2020_100m")

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        bands=None,
        download: bool = False,
        checksum: bool = True,
        *,
        product: str = "BUILT_S",
        release: str | None = None,
        land_coding: str = "share",
        bbox=None,
        bbox_crs=None,
    ):
        super().__init__(root, split, bands, download, checksum)
        if self.bands is not None:
            raise ConfigError(f"GHSL files have one band: bands must be None, got {bands!r}")
        self.bbox, self.bbox_crs = bbox, bbox_crs
        self.product = product.upper()
        if self.product not in PRODUCTS:
            raise ConfigError(f"GHSL product must be one of {sorted(PRODUCTS)}, got {product!r}")
        if land_coding not in ("share", "m2"):
            raise ConfigError(f"land_coding must be 'share' or 'm2', got {land_coding!r}")
        self.land_coding = land_coding
        if not self.root.is_dir():
            raise DataFormatError(f"{self.root}: GHSL folder not found")
        rows = []
        for path in sorted(self.root.rglob("*.tif")):
            m = _NAME.match(path.name)
            if m and m["product"].upper() == self.product and (release is None or m["release"] == release):
                rows.append(
                    {
                        "path": path,
                        "epoch": int(m["epoch"]),
                        "release": m["release"],
                        "resolution": m["res"],
                        "crs": m["crs"],
                        "site": m["tile"] or "GLOBE",
                    }
                )
        if not rows:
            raise DataFormatError(
                f"{self.root}: no GHS_{self.product}_E<epoch>_GLOBE_<release>_... .tif file"
                + (f" of release {release}" if release else "")
            )
        self.files = pd.DataFrame(rows)

    @property
    def epochs(self) -> list[int]:
        """The epochs (years) found."""
        return pg.file_values(self.files, "epoch", int)

    def _paths(self, epoch: int, site: str | None) -> list[Path]:
        sel = self.rows_of("epoch", epoch, site)
        if sel.empty:
            raise DataFormatError(
                f"{self.root}: no GHS_{self.product} file for epoch {epoch}"
                + (f", site {site}" if site else "")
                + f" (have epochs {self.epochs}, "
                f"sites {self.sites})"
            )
        return list(sel["path"])

    def read_epoch(self, epoch: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """One epoch as a (y, x) DataArray in the file's units (nodata = NaN), checked.

        Args:
            epoch: the year (e.g. 2020); site: one tile (None: all tiles of the epoch, merged).
            bbox: (left, bottom, right, top) in ``bbox_crs`` (None: the file's CRS).
        """
        bbox = pg.parse_bbox(bbox)
        parts = []
        for path in self._paths(epoch, site):
            try:
                parts.append(pg.open_grid(path, bbox=bbox, bbox_crs=bbox_crs, name=self.product))
            except DataFormatError:
                if bbox is None:
                    raise
        if not parts:
            raise DataFormatError(f"{self.root}: bbox {bbox} overlaps no GHS_{self.product} tile of {epoch}")
        da = parts[0] if len(parts) == 1 else _merge(parts)
        da.attrs.update(product=self.product, epoch=int(epoch), units=PRODUCTS[self.product])
        self._check(da)
        return da

    def _check(self, da: xr.DataArray) -> None:
        crs = da.rio.crs
        cell_m2 = None if crs is None or crs.is_geographic else abs(float(np.prod(da.rio.resolution())))
        if self.product == "POP":
            pg.check_range(da, 0, None, "GHS-POP persons per cell")
        elif self.product == "BUILT_S":
            pg.check_range(da, 0, cell_m2, "GHS-BUILT-S m2 of built-up surface per cell")
        elif self.product == "LAND":
            pg.check_range(
                da, 0, 1.0 if self.land_coding == "share" else cell_m2, f"GHS-LAND ({self.land_coding})"
            )
        else:
            v = np.asarray(da.values)
            bad = np.setdiff1d(np.unique(v[np.isfinite(v)]), SMOD_CODES)
            if bad.size:
                raise DataFormatError(
                    f"{da.attrs.get('source_file')}: GHS-SMOD codes must be {SMOD_CODES}, "
                    f"found {bad[:5].tolist()}"
                )

    def read_1km(self, epoch: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """One epoch aggregated to ~1 km.

        POP summed; BUILT_S summed then divided by the cell area (built-up share 0..1); LAND as
        area-weighted share 0..1; SMOD unchanged.
        """
        da = self.read_epoch(epoch, site=site, bbox=bbox, bbox_crs=bbox_crs)
        factor = pg.block_factor(da)
        if self.product == "SMOD":
            if factor != 1:
                raise DataFormatError(
                    f"GHS-SMOD is a 1 km class grid; this one has {da.rio.resolution()} cells"
                )
            return da
        if self.product == "LAND":
            share = da if self.land_coding == "share" else da / abs(float(np.prod(da.rio.resolution())))
            out = pg.aggregate_grid(share, "share", factor)
            out.attrs["units"] = "share of permanent land (0..1)"
            return out
        out = pg.aggregate_grid(da, "sum", factor)
        if self.product == "BUILT_S":
            area = abs(float(np.prod(out.rio.resolution())))
            out = (out / area).clip(0, 1).rio.write_crs(out.rio.crs)
            out.attrs = dict(
                da.attrs,
                units="built-up share of the cell (0..1)",
                aggregated=f"sum of {factor} x {factor} cells / cell area",
            )
        return out

    def read(self, site: str):
        """The tile ``site`` over every epoch as a scene (``BUILT_S`` or ``POP`` only).

        Raises:
            ConfigError: for ``LAND``/``SMOD`` (no scene variable: use :meth:`read_epoch`).
        """
        variable = {"BUILT_S": "buildings", "POP": "population"}.get(self.product)
        if variable is None:
            raise ConfigError(f"GHS-{self.product} has no scene variable; use read_epoch(epoch, site=...)")
        grids = [self.read_epoch(e, site=site, bbox=self.bbox, bbox_crs=self.bbox_crs) for e in self.epochs]
        if variable == "buildings":
            if grids[0].rio.crs is None or grids[0].rio.crs.is_geographic:
                raise DataFormatError(f"{self.root}: BUILT_S on a geographic grid: the built-up share needs "
                                      "a projected (equal-area) grid")
            cell_m2 = abs(float(np.prod(grids[0].rio.resolution())))
            grids = [(g / cell_m2).clip(0, 1) for g in grids]
        return pg.grids_to_scene(grids, self.epochs, variable, site=site, dataset=self.key,
                                 source=f"GHS-{self.product} {', '.join(sorted(self.files['release'].unique()))}",
                                 licence="GHSL data: CC BY 4.0 (European Commission, JRC)")

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write two synthetic 20 x 20 GHS-BUILT-S tiles (epochs 2015, 2020; 100 m, Mollweide)."""
        from affine import Affine

        built = np.random.default_rng(seed).uniform(0, 4000, size=(20, 20))
        grids = {f"GHS_BUILT_S_E{epoch}_GLOBE_R2023A_54009_100_V1_0_R4_C19.tif":
                 np.clip(built + grow * (built > 2000), 0, 10000) for epoch, grow in ((2015, 0.0), (2020, 2000.0))}
        return pg.write_grid_sample(Path(folder) / cls.key, grids,
                                    Affine(100.0, 0, 1_000_000.0, 0, -100.0, 5_000_000.0), "ESRI:54009")

    def plot_epoch(self, epoch: int, ax=None, **kwargs):
        """Map one epoch (log colours for POP and BUILT_S); returns the Axes."""
        da = self.read_epoch(epoch, **kwargs)
        return pg.plot_grid(
            da, ax, title=f"GHS-{self.product} {epoch}", log=self.product in ("POP", "BUILT_S")
        )


def _merge(parts: list[xr.DataArray]) -> xr.DataArray:
    from rioxarray.merge import merge_arrays

    return merge_arrays(parts)


class GHSLBuiltEpochs:
    """The GHSL "first epoch built" raster: value = first epoch (1975..2030) a cell is built-up.

    Args:
        path: the GeoTIFF (e.g. ``ghsl/GHSL.tif`` of the GOSTurban tutorial data).
        nodata: value of never-built / outside cells when the file declares none.

    Attributes:
        sites: ``[file stem]``; epochs: the epochs present in the file.
    """

    def __init__(self, path: str | Path, *, nodata: float | None = 65535):
        self.path = Path(path)
        da = pg.open_grid(self.path, name="first_built_epoch")
        if nodata is not None:
            da = da.where(da != nodata)
        v = np.asarray(da.values)
        found = np.unique(v[np.isfinite(v)]).astype(int)
        bad = found[(found < 1975) | (found > 2030)]
        if bad.size:
            raise DataFormatError(
                f"{self.path}: first-built epochs must lie in 1975..2030, found {bad[:5].tolist()}"
            )
        self.data = da
        self.epochs = found.tolist()
        self.sites = [self.path.stem]

    def read(self, year: int, site: str | None = None) -> xr.DataArray:
        """(y, x) bool DataArray: built-up at ``year`` (first epoch <= year)."""
        if site not in (None, *self.sites):
            raise DataFormatError(f"{self.path}: no site {site!r} (have {self.sites})")
        out = (self.data <= int(year)).fillna(False).astype(bool)
        out = out.rio.write_crs(self.data.rio.crs).rio.write_transform(self.data.rio.transform())
        out.name = f"built_{year}"
        out.attrs = {"source_file": str(self.path), "units": "built-up (bool)", "year": int(year)}
        return out

    @property
    def valid(self) -> xr.DataArray:
        """(y, x) bool: cells built-up at some epoch (the raster's non-nodata cells)."""
        return self.data.notnull()

    def plot(self, ax=None, **kwargs):
        """Map the first-built epoch; returns the Axes."""
        return pg.plot_grid(self.data, ax, title=f"{self.path.name}: first epoch built", cmap="magma_r")
