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

__all__ = ["WorldPop"]

_NAME = re.compile(
    r"^(?:(?P<iso>[a-z]{3})_)?ppp_(?P<year>\d{4})(?P<agg>_1km_Aggregated)?(?P<un>_UNadj)?\.tif$",
    re.IGNORECASE,
)


class WorldPop:
    """WorldPop ppp grids found under a folder (searched recursively).

    Args:
        root: the folder; or a single GeoTIFF with ``year`` given (any file name).
        resolution: keep ``"1km"`` or ``"100m"`` files only (None: both).
        un_adjusted: keep only ``_UNadj`` (True) or only unadjusted files (False); None: both.
        year: the year of a single file given as ``root``.

    Attributes:
        files: DataFrame (path, site, year, resolution, un_adjusted).
    """

    def __init__(
        self,
        root: str | Path,
        *,
        resolution: str | None = None,
        un_adjusted: bool | None = None,
        year: int | None = None,
    ):
        self.root = Path(root)
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
    def sites(self) -> list[str]:
        """Countries (ISO3) or file groups found."""
        return sorted(str(s) for s in self.files["site"].unique())

    @property
    def years(self) -> list[int]:
        """The years found."""
        return sorted(int(y) for y in self.files["year"].unique())

    def _path(self, year: int, site: str | None) -> Path:
        sel = self.files[self.files["year"] == int(year)]
        if site is not None:
            sel = sel[sel["site"] == site]
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

    def read(self, year: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """Persons per cell of one year as a (y, x) DataArray (nodata = NaN), optionally clipped.

        Args:
            year: e.g. 2020; site: the country when several are present.
            bbox: (left, bottom, right, top) in ``bbox_crs`` (None: the file's CRS, degrees).
        """
        path = self._path(year, site)
        da = pg.open_grid(path, bbox=pg.parse_bbox(bbox), bbox_crs=bbox_crs, name="population")
        pg.check_range(da, 0, None, "WorldPop persons per cell")
        da.attrs.update(year=int(year), units="persons per cell", dataset="WorldPop")
        return da

    def read_1km(self, year: int, *, site: str | None = None, bbox=None, bbox_crs=None) -> xr.DataArray:
        """Persons per ~1 km cell: a 100 m (3 arc-second) grid summed in 10 x 10 blocks."""
        da = self.read(year, site=site, bbox=bbox, bbox_crs=bbox_crs)
        return pg.aggregate_grid(da, "sum", pg.block_factor(da))

    def plot(self, year: int, ax=None, **kwargs):
        """Map one year's population (log colours); returns the Axes."""
        return pg.plot_grid(self.read(year, **kwargs), ax, title=f"WorldPop {year}", log=True)


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
