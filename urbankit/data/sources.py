"""Registry of the public data sources the kit can read, with honest provenance.

Each :class:`Source` names where a file comes from (``url``), what it is called (``filename``),
how to verify it (``sha256``/``md5``, ``None`` where we do not know a published value: we never
invent checksums), its licence, the bib key in ``book/references.bib`` (``citation``) and notes.

* ``manual=True``: the file cannot be fetched by a script (IEEE DataPort needs a login; Google
  Drive / Baidu links). :func:`urbankit.data.download.fetch` then raises a ``DownloadError``
  that says where to get the file and where to put it; once it is there, ``fetch`` verifies
  (when a checksum is known) and extracts it.
* A source without a checksum is only downloaded with ``allow_unverified=True``
  (CLI ``--allow-unverified``).
* ``mirrors``: other public copies of the same file (``fetch(..., mirror=True)``).
* ``zenodo_record``: the entry is a Zenodo record; ``url`` is its API URL and every file of
  the record is downloaded and checked against the md5 and size the record publishes
  (:func:`urbankit.data.download.fetch_zenodo`).
* :data:`GROUPS`: names that stand for several entries (``urbankit download oscd`` = images +
  train labels + test labels).

Checksum provenance: the OSCD and LEVIR-CD md5 values are the ones published in torchgeo
(``microsoft/torchgeo``, ``torchgeo/datasets/oscd.py`` and ``levircd.py``) for exactly these
files; the OSCD files are fetched from the same public mirror torchgeo downloads them from
(``partage.imt.fr`` / ``partage.mines-telecom.fr``, the Onera/IMT share; IEEE DataPort, which
needs a login, stays the homepage). We did not recompute them (no network here). Sizes are
``None`` where unknown.

Helpers :func:`ghsl_tile` and :func:`worldpop` build entries for one GHSL tile or one WorldPop
country grid from the documented URL patterns.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError

__all__ = ["GROUPS", "Source", "SOURCES", "get_source", "list_sources", "sources_table", "ghsl_tile",
           "worldpop"]


@dataclass(frozen=True)
class Source:
    """One downloadable file (usually an archive) of a public dataset."""

    name: str
    title: str
    url: str
    filename: str
    licence: str
    citation: str | None
    target: str  # sub-folder of the data root that receives the file (and its extracted content)
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None
    notes: str = ""
    homepage: str | None = None
    manual: bool = False
    mirrors: tuple[str, ...] = field(default_factory=tuple)
    extract: bool = True
    zenodo_record: str | None = None

    @property
    def verified(self) -> bool:
        """True when a checksum is known (the download can be verified); Zenodo records publish md5s."""
        return bool(self.sha256 or self.md5 or self.zenodo_record)

    @property
    def checksum_kind(self) -> str:
        """``"sha256"``, ``"md5"``, ``"record"`` (per-file md5 of a Zenodo record) or ``"none"``."""
        return "sha256" if self.sha256 else "md5" if self.md5 else "record" if self.zenodo_record else "none"

    def manual_instructions(self, dest_dir: str | os.PathLike) -> str:
        """The message shown when this source cannot be downloaded by a script."""
        where = self.homepage or self.url
        check = (f" It will be verified against the known {self.checksum_kind} ({self.sha256 or self.md5})."
                 if self.verified else " No checksum is known for it, so it cannot be verified.")
        mirror = (f" A public mirror exists: fetch({self.name!r}, root, mirror=True) "
                  f"(CLI: urbankit download {self.name} --mirror)." if self.mirrors else "")
        return (f"{self.title} ({self.name}) cannot be downloaded automatically: {self.notes} "
                f"Get the file {self.filename!r} from {where} and put it into {Path(dest_dir)} "
                f"(keep the file name), then call fetch({self.name!r}) again or run "
                f"`urbankit download {self.name}`: it is then found, checked and extracted.{check}{mirror}")


_OSCD_PAGE = "https://ieee-dataport.org/open-access/oscd-onera-satellite-change-detection"
_OSCD_NOTE = ("Fetched from the public Onera/IMT mirror that torchgeo uses (pinned share links) and "
              "checked against torchgeo's md5; the official copy on IEEE DataPort needs a login.")
_OSCD_LICENCE = ("labels CC BY-NC-SA 4.0 (OSCD README); images: modified Copernicus Sentinel-2 data "
                 "2015-2018")
_LEVIR_HF = ("https://huggingface.co/datasets/satellite-image-deep-learning/LEVIR-CD/resolve/"
             "6a6bb0a5b389403d81c05e33bf08bc0b9e5f13a6/")
_LEVIR_LICENCE = "LEVIR-CD terms: academic / research use only; imagery Google Earth"
_GHSL_FTP = "https://jeodpp.jrc.ec.europa.eu/ftp/jrc-opendata/GHSL"

_ENTRIES = [
    # ---------------------------------------------------------------- OSCD (Sentinel-2)
    Source("oscd_images", "OSCD images (Sentinel-2, 24 cities)",
           url="https://partage.imt.fr/index.php/s/gKRaWgRnLMfwMGo/download",
           filename="Onera Satellite Change Detection dataset - Images.zip",
           md5="c50d4a2941da64e03a47ac4dec63d915", licence=_OSCD_LICENCE, citation="daudt2018oscd",
           target="oscd", homepage=_OSCD_PAGE, notes=_OSCD_NOTE),
    Source("oscd_train_labels", "OSCD train labels (14 cities)",
           url="https://partage.mines-telecom.fr/index.php/s/2D6n03k58ygBSpu/download",
           filename="Onera Satellite Change Detection dataset - Train Labels.zip",
           md5="4d2965af8170c705ebad3d6ee71b6990", licence=_OSCD_LICENCE, citation="daudt2018oscd",
           target="oscd", homepage=_OSCD_PAGE, notes=_OSCD_NOTE),
    Source("oscd_test_labels", "OSCD test labels (10 cities)",
           url="https://partage.imt.fr/index.php/s/gpStKn4Mpgfnr63/download",
           filename="Onera Satellite Change Detection dataset - Test Labels.zip",
           md5="8177d437793c522653c442aa4e66c617", licence=_OSCD_LICENCE, citation="daudt2018oscd",
           target="oscd", homepage=_OSCD_PAGE, notes=_OSCD_NOTE),
    # ---------------------------------------------------------------- OSCD Sentinel-1 (DS U-Net)
    Source("oscd_s1", "OSCD Sentinel-1 VV (DS U-Net export, per orbit, t1/t2)",
           url="https://github.com/SebastianHafner/DS_UNet/archive/2d953b1a5e8c66f1be0fae3ae5686985eff2af66.zip",
           filename="DS_UNet-2d953b1a5e8c66f1be0fae3ae5686985eff2af66.zip",
           licence="GPL-2.0 (repository); pixels: Copernicus Sentinel-1 data", citation="hafner2022dsunet",
           target="oscd_s1", homepage="https://github.com/SebastianHafner/DS_UNet",
           notes=("GitHub source archive of the repository at a fixed commit; the S1 files are in "
                  "data/sentinel1_<city>_<orbit>_t{1,2}.tif, value = (sigma0_dB + 25) / 30 clipped to "
                  "[0, 1]. GitHub does not publish archive checksums (needs allow_unverified=True).")),
    # ---------------------------------------------------------------- KTH Zenodo data sets
    Source("sen12_mtum", "SEN12 Multi-Temporal Urban Mapping (Sentinel-1/2, monthly)",
           url="https://zenodo.org/api/records/7794693", filename="(every file of the record)",
           licence="see the Zenodo record 10.5281/zenodo.7794693", citation="hafner2023sen12mtum",
           target="sen12_mtum", homepage="https://doi.org/10.5281/zenodo.7794693", zenodo_record="7794693",
           mirrors=("https://zenodo.org/api/records/7794693/files-archive",),
           notes=("Zenodo record 7794693, fetched file by file with the md5 and size the record "
                  "publishes (the 'download all' archive is built on the fly and has no checksum). "
                  "Large.")),
    Source("sen12_gum", "SEN12 Global Urban Mapping (SEN12_GUM, Fusion-DA)",
           url="https://zenodo.org/api/records/6914898", filename="(every file of the record)",
           licence="see the Zenodo record 10.5281/zenodo.6914898", citation="hafner2022fusionda",
           target="sen12_gum", homepage="https://doi.org/10.5281/zenodo.6914898", zenodo_record="6914898",
           mirrors=("https://zenodo.org/api/records/6914898/files-archive",),
           notes=("Zenodo record 6914898, fetched file by file with the md5 and size the record "
                  "publishes. Large.")),
    # ---------------------------------------------------------------- VHR change detection
    Source("levir_cd_train", "LEVIR-CD train split (445 pairs, 1024x1024 PNG)",
           url=_LEVIR_HF + "train.zip", filename="train.zip", md5="a638e71f480628652dea78d8544307e4",
           licence=_LEVIR_LICENCE, citation="chen2020levir", target="levir_cd",
           homepage="https://justchenhao.github.io/LEVIR/",
           notes="Hugging Face copy (pinned commit) used by torchgeo; md5 from torchgeo."),
    Source("levir_cd_val", "LEVIR-CD val split (64 pairs)",
           url=_LEVIR_HF + "val.zip", filename="val.zip", md5="f7b857978524f9aa8c3bf7f94e3047a4",
           licence=_LEVIR_LICENCE, citation="chen2020levir", target="levir_cd",
           homepage="https://justchenhao.github.io/LEVIR/",
           notes="Hugging Face copy (pinned commit) used by torchgeo; md5 from torchgeo."),
    Source("levir_cd_test", "LEVIR-CD test split (128 pairs)",
           url=_LEVIR_HF + "test.zip", filename="test.zip", md5="07d5dd89e46f5c1359e2eca746989ed9",
           licence=_LEVIR_LICENCE, citation="chen2020levir", target="levir_cd",
           homepage="https://justchenhao.github.io/LEVIR/",
           notes="Hugging Face copy (pinned commit) used by torchgeo; md5 from torchgeo."),
    Source("levir_cd_256", "LEVIR-CD-256 (pre-cut 256x256 crops, BIT/ChangeFormer layout)",
           url="https://www.dropbox.com/s/h9jl2ygznsaeg5d/LEVIR-CD-256.zip?dl=1", filename="LEVIR-CD-256.zip",
           licence=_LEVIR_LICENCE, citation="chen2020levir", target="levir_cd_256",
           homepage="https://github.com/justchenhao/BIT_CD",
           notes=("Third-party pre-cut version (A/ B/ label/ + list/ with train/val/test.txt); Dropbox "
                  "publishes no checksum.")),
    Source("whu_cd", "WHU building change detection (Christchurch 2012/2016, 0.3 m)",
           url="https://gpcv.whu.edu.cn/data/building_dataset.html",
           filename="Building change detection dataset_add.zip",
           licence="WHU building dataset terms: academic use", citation="ji2019whu", target="whu_cd",
           homepage="https://gpcv.whu.edu.cn/data/building_dataset.html", manual=True,
           notes="The download page offers the archives by link/cloud drive, not by a stable URL."),
    Source("whu_cd_256", "WHU-CD-256 (pre-cut 256x256 tiles, A/B/label)",
           url="https://www.dropbox.com/s/r76a00jcxp5d3hl/WHU-CD-256.zip?dl=1", filename="WHU-CD-256.zip",
           licence="WHU building dataset terms: academic use", citation="ji2019whu", target="whu_cd_256",
           notes=("Third-party pre-cut version (DDPM-CD / TinyCD); its split is that third party's, not "
                  "the kit's spatial 8:1:1 split. Dropbox publishes no checksum.")),
    Source("dsifn", "DSIFN-CD (six Chinese cities, Google Earth, 512x512)",
           url="https://github.com/GeoZcx/A-deeply-supervised-image-fusion-network-for-change-detection-in-remote-sensing-images",
           filename="DSIFN.zip", licence="research use (see the authors' repository)",
           citation="zhang2020dsifn",
           target="dsifn",
           homepage="https://github.com/GeoZcx/A-deeply-supervised-image-fusion-network-for-change-detection-in-remote-sensing-images",
           manual=True, notes="The authors share the data through Google Drive / Baidu links only."),
    Source("dsifn_cd_256", "DSIFN-CD-256 (pre-cut 256x256 crops, ChangeFormer layout)",
           url="https://www.dropbox.com/s/1lr4m70x8jdkdr0/DSIFN-CD-256.zip?dl=1", filename="DSIFN-CD-256.zip",
           licence="research use (see the authors' repository)", citation="zhang2020dsifn",
           target="dsifn_cd_256",
           homepage="https://github.com/wgcban/ChangeFormer",
           notes="Third-party pre-cut version (ChangeFormer). Dropbox publishes no checksum."),
    Source("sysu_cd", "SYSU-CD (Hong Kong 2007/2014, 256x256, 0.5 m)",
           url="https://github.com/liumency/SYSU-CD", filename="SYSU-CD.zip",
           licence="research use (see the authors' repository)", citation="shi2022sysu", target="sysu_cd",
           homepage="https://github.com/liumency/SYSU-CD", manual=True,
           notes="The authors share the data through Baidu / Google Drive links only."),
    # ---------------------------------------------------------------- GHSL / WorldPop
    Source("ghsl_built_s_2020_100m", "GHS-BUILT-S R2023A, epoch 2020, 100 m, global (Mollweide)",
           url=(f"{_GHSL_FTP}/GHS_BUILT_S_GLOBE_R2023A/GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100/V1-0/"
                "GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0.zip"),
           filename="GHS_BUILT_S_E2020_GLOBE_R2023A_54009_100_V1_0.zip",
           licence="CC BY 4.0 (European Commission, JRC)",
           citation="pesaresi2023ghsl", target="ghsl", homepage="https://human-settlement.emergency.copernicus.eu/",
           notes=("Global file, several GB; prefer one tile: ghsl_tile(row, col). The JRC does not "
                  "publish checksums (allow_unverified=True).")),
    Source("ghsl_pop_2020_100m", "GHS-POP R2023A, epoch 2020, 100 m, global (Mollweide)",
           url=(f"{_GHSL_FTP}/GHS_POP_GLOBE_R2023A/GHS_POP_E2020_GLOBE_R2023A_54009_100/V1-0/"
                "GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0.zip"),
           filename="GHS_POP_E2020_GLOBE_R2023A_54009_100_V1_0.zip",
           licence="CC BY 4.0 (European Commission, JRC)",
           citation="pesaresi2023ghsl", target="ghsl", homepage="https://human-settlement.emergency.copernicus.eu/",
           notes="Global file; prefer ghsl_tile(row, col, product='POP'). No published checksum."),
    Source("worldpop_bdi_2020_1km", "WorldPop population counts, Burundi, 2020, 1 km (UN-unadjusted)",
           url="https://data.worldpop.org/GIS/Population/Global_2000_2020_1km/2020/BDI/bdi_ppp_2020_1km_Aggregated.tif",
           filename="bdi_ppp_2020_1km_Aggregated.tif", licence="CC BY 4.0 (WorldPop)",
           citation="worldpop2018",
           target="worldpop", homepage="https://hub.worldpop.org/", extract=False,
           notes="Example entry; any country/year: worldpop('KEN', 2015). No published checksum."),
]

SOURCES: dict[str, Source] = {s.name: s for s in _ENTRIES}

#: Names that stand for several entries (``fetch("oscd")``, ``urbankit download oscd``).
GROUPS: dict[str, tuple[str, ...]] = {
    "oscd": ("oscd_images", "oscd_train_labels", "oscd_test_labels"),
}


def get_source(name: str) -> Source:
    """The registry entry ``name``; ConfigError listing the known names otherwise."""
    try:
        return SOURCES[name]
    except KeyError:
        raise ConfigError(f"unknown data source {name!r}; known: {', '.join(SOURCES)}") from None


def list_sources() -> list[Source]:
    """Every registry entry (:data:`SOURCES`), in registry order."""
    return list(SOURCES.values())


def sources_table():
    """The registry as a pandas DataFrame (name, title, verify, manual, licence, citation, url)."""
    import pandas as pd

    rows = [dict(name=s.name, title=s.title, verify=s.checksum_kind, manual=s.manual, licence=s.licence,
                 citation=s.citation, url=s.url) for s in SOURCES.values()]
    return pd.DataFrame(rows).set_index("name")


def ghsl_tile(row: int, col: int, *, product: str = "BUILT_S", epoch: int = 2020,
              resolution: int = 100) -> Source:
    """A :class:`Source` for one GHSL R2023A tile (Mollweide, ESRI:54009) ``R<row>_C<col>``.

    ``product``: ``"BUILT_S"`` (built-up surface, m2 per cell) or ``"POP"`` (persons per cell);
    ``epoch``: 1975..2030 in 5-year steps; ``resolution``: 100 or 1000 m. The tile grid is the
    GHSL one (see the tile schema on the GHSL download page). No checksums are published.
    """
    product = product.upper()
    if product not in ("BUILT_S", "POP"):
        raise ConfigError(f"GHSL product must be 'BUILT_S' or 'POP', not {product!r}")
    if epoch % 5 or not 1975 <= epoch <= 2030:
        raise ConfigError(f"GHSL epoch must be one of 1975, 1980, ..., 2030, not {epoch}")
    if resolution not in (100, 1000):
        raise ConfigError(f"GHSL tiles are distributed at 100 or 1000 m, not {resolution}")
    stem = f"GHS_{product}_E{epoch}_GLOBE_R2023A_54009_{resolution}"
    name = f"{stem}_V1_0_R{int(row)}_C{int(col)}.zip"
    return Source(f"ghsl_{product.lower()}_{epoch}_{resolution}m_r{row}_c{col}",
                  f"GHS-{product.replace('_', '-')} {epoch} {resolution} m tile R{row} C{col}",
                  url=f"{_GHSL_FTP}/GHS_{product}_GLOBE_R2023A/{stem}/V1-0/tiles/{name}", filename=name,
                  licence="CC BY 4.0 (European Commission, JRC)", citation="pesaresi2023ghsl", target="ghsl",
                  homepage="https://human-settlement.emergency.copernicus.eu/",
                  notes="GHSL tile (no published checksum: allow_unverified=True).")


def worldpop(iso3: str, year: int, *, resolution: str = "1km") -> Source:
    """A :class:`Source` for a WorldPop unconstrained population-count grid of one country.

    ``resolution``: ``"1km"`` (``Global_2000_2020_1km``) or ``"100m"`` (``Global_2000_2020``);
    ``year`` 2000..2020. No checksums are published.
    """
    iso = iso3.strip().upper()
    if len(iso) != 3 or not iso.isalpha():
        raise ConfigError(f"iso3 must be a 3-letter ISO country code, not {iso3!r}")
    if not 2000 <= int(year) <= 2020:
        raise ConfigError(f"WorldPop Global_2000_2020 grids cover 2000..2020, not {year}")
    if resolution == "1km":
        fname = f"{iso.lower()}_ppp_{year}_1km_Aggregated.tif"
        url = f"https://data.worldpop.org/GIS/Population/Global_2000_2020_1km/{year}/{iso}/{fname}"
    elif resolution == "100m":
        fname = f"{iso.lower()}_ppp_{year}.tif"
        url = f"https://data.worldpop.org/GIS/Population/Global_2000_2020/{year}/{iso}/{fname}"
    else:
        raise ConfigError(f"resolution must be '1km' or '100m', not {resolution!r}")
    return Source(f"worldpop_{iso.lower()}_{year}_{resolution}", f"WorldPop {iso} {year} {resolution}",
                  url=url, filename=fname, licence="CC BY 4.0 (WorldPop)", citation="worldpop2018",
                  target="worldpop", homepage="https://hub.worldpop.org/", extract=False,
                  notes="No published checksum: allow_unverified=True.")
