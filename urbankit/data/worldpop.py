"""Reader of WorldPop population-count grids {cite}`worldpop2018`.

WorldPop "ppp" grids hold persons per cell (float32, WGS84): ``<iso>_ppp_<year>.tif`` at
3 arc-seconds (~100 m) and ``<iso>_ppp_<year>_1km_Aggregated.tif`` at 30 arc-seconds (~1 km);
the ``_UNadj`` variants are adjusted to UN totals. The declared nodata (-3.4e38 in the real
files) becomes NaN; any other negative value raises :class:`DataFormatError` naming the file.
``sites`` are the countries (ISO3, lower case; ``"ppp"`` for files named without one).
:meth:`WorldPop.read_1km` sums 10 x 10 blocks of a 100 m grid (counts are summed, never
averaged) and keeps a 1 km grid. Never imports torch.
"""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import xarray as xr

from ..errors import ConfigError, DataFormatError
from . import population_grids as pg
from .reader import Reader

__all__ = ["WorldPop"]

_NAME = re.compile(
    r"^(?:(?P<iso>[a-z]{3})_)?ppp_(?P<year>\d{4})(?P<agg>_1km_Aggregated)?(?P<un>_UNadj)?\.tif$",
    re.IGNORECASE,
)


class WorldPop(pg.FileTable, Reader):
    """WorldPop ppp grids found under a folder (searched recursively).

    :meth:`read` gives a site (country) as a ``population`` scene over every year found;
    :meth:`read_epoch` gives one year's grid.

    Args:
        root: the folder; or a single GeoTIFF with ``year`` given (any file name).
        split: ``"all"`` only; bands: None (one band per file).
        download, checksum: see :mod:`urbankit.data.reader`.
        resolution: keep ``"1km"`` or ``"100m"`` files only (None: both).
        un_adjusted: keep only ``_UNadj`` (True) or only unadjusted files (False); None: both.
        year: the year of a single file given as ``root``.
        bbox, bbox_crs: clip the scenes of :meth:`read` to (left, bottom, right, top).

    Attributes:
        files: DataFrame (path, site, year, resolution, un_adjusted).
    """

    key = "worldpop"
    title = "WorldPop"
    sources = ("worldpop_bdi_2020_1km",)

    def __init__(
        self,
        root: str | Path,
        split: str = "all",
        bands=None,
        download: bool = False,
        checksum: bool = True,
        *,
        resolution: str | None = None,
        un_adjusted: bool | None = None,
        year: int | None = None,
        bbox=None,
        bbox_crs=None,
    ):
        super().__init__(root, split, bands, download, checksum)
        if self.bands is not None:
            raise ConfigError(f"WorldPop files have one band: bands must be None, got {bands!r}")
        self.bbox, self.bbox_crs = bbox, bbox_crs
        if resolution not in (None, "1km", "100m"):
            raise ConfigError(f"resolution must be '1km', '100m' or None, got {resolution!r}")
        if self.root.is_file():
            if year is None:
                m = _NAME.match(self.root.name)
                if not m:
                    raise ConfigError(f"{self.root}: not a WorldPop ppp file name; pass year=")
                year = int(m["year"])
            rows = [
                {
                    "path": self.root,
                    "site": self.root.stem,
                    "year": int(year),
                    "resolution": "unknown",
                    "un_adjusted": False,
                }
            ]
        else:
            if not self.root.is_dir():
                raise DataFormatError(f"{self.root}: WorldPop folder or file not found")
            rows = [r for r in map(_parse, sorted(self.root.rglob("*.tif"))) if r is not None]
            rows = [
                r
                for r in rows
                if (resolution is None or r["resolution"] == resolution)
                and (un_adjusted is None or r["un_adjusted"] == un_adjusted)
            ]
        if not rows:
            raise DataFormatError(f"{self.root}: no WorldPop <iso>_ppp_<year>[_1km_Aggregated].tif file")
        self.files = pd.DataFrame(rows)

    @property
    def years(self) -> list[int]:
        """The years found."""
        return pg.file_values(self.files, "year", int)

    def _path(self, year: int, site: str | None) -> Path:
        sel = self.rows_of("year", year, site)
        if len(sel) != 1:
            found = (
                "no WorldPop file"
                if sel.empty
                else f"{len(sel)} WorldPop files ({', '.join(p.name for p in sel['path'])})"
            )
            raise DataFormatError(
                f"{self.root}: {found} for year {year}"
                + (f", site {site}" if site else "")
                + f"; have years {self.years}, sites "
                f"{self.sites} (pass site= or resolution=)"
            )
        return Path(sel["path"].iloc[0])

    def read_epoch(self, year: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """Persons per cell of one year as a (y, x) DataArray (nodata = NaN), optionally clipped.

        Args:
            year: e.g. 2020; site: the country when several are present.
            bbox: (left, bottom, right, top) in ``bbox_crs`` (None: the file's CRS, degrees).
        """
        path = self._path(year, site)
        da = pg.open_grid(path, bbox=pg.parse_bbox(bbox), bbox_crs=bbox_crs, name="population")
        pg.check_range(da, 0, None, "WorldPop persons per cell")
        da.attrs.update(year=int(year), units="persons per cell", dataset=self.key)
        return da

    def read_1km(self, year: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """Persons per ~1 km cell: a 100 m (3 arc-second) grid summed in 10 x 10 blocks."""
        da = self.read_epoch(year, site=site, bbox=bbox, bbox_crs=bbox_crs)
        return pg.aggregate_grid(da, "sum", pg.block_factor(da))

    def read(self, site: str):
        """The country (or file group) ``site`` over every year found, as a ``population`` scene."""
        years = sorted(int(y) for y in self.files.loc[self.files["site"] == site, "year"].unique())
        if not years:
            raise DataFormatError(f"{self.root}: no WorldPop file of site {site!r} (have {self.sites})")
        grids = [self.read_epoch(y, site=site, bbox=self.bbox, bbox_crs=self.bbox_crs) for y in years]
        return pg.grids_to_scene(grids, years, "population", site=site, dataset=self.key,
                                 source="WorldPop population counts (ppp)", licence="WorldPop: CC BY 4.0")

    @classmethod
    def write_sample(cls, folder, seed: int = 0):
        """Write synthetic 100 m-style ppp grids of a country ``xyz`` (2019, 2020; 20 x 20, WGS84)."""
        import numpy as np
        from affine import Affine

        pop = np.random.default_rng(seed).gamma(2.0, 5.0, size=(20, 20))
        grids = {f"xyz_ppp_{year}.tif": pop * factor for year, factor in ((2019, 1.0), (2020, 1.03))}
        return pg.write_grid_sample(Path(folder) / cls.key, grids,
                                    Affine(0.000833333, 0, 29.0, 0, -0.000833333, -3.0), "EPSG:4326")

    def plot_epoch(self, year: int, ax=None, **kwargs):
        """Map one year's population (log colours); returns the Axes."""
        return pg.plot_grid(self.read_epoch(year, **kwargs), ax, title=f"WorldPop {year}", log=True)


def _parse(path: Path) -> dict | None:
    m = _NAME.match(path.name)
    if not m:
        return None
    return {
        "path": path,
        "site": (m["iso"] or "ppp").lower(),
        "year": int(m["year"]),
        "resolution": "1km" if m["agg"] else "100m",
        "un_adjusted": bool(m["un"]),
    }
