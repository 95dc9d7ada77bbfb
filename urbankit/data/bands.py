"""Band metadata: Sentinel-2 MSI bands, Sentinel-1 polarisations, VHR RGB, handy subsets.

The canonical Sentinel-2 order is the one of the OSCD dataset and torchgeo
(``B01, B02, B03, B04, B05, B06, B07, B08, B8A, B09, B10, B11, B12``); every optical
``band`` coordinate in urbankit uses these names, so selecting by name always works::

    from urbankit.data import bands
    scene.optical.sel(band=list(bands.RGB))          # true colour, red first
    bands.band_table()                               # a DataFrame for chapters

Central wavelengths and bandwidths are the Sentinel-2A values of the ESA MSI spectral
response functions (S2B differs by a few nm); resolutions are the native ground
sampling distances {cite}`drusch2012sentinel2`. Sentinel-1 IW GRD products carry VV and
VH in C band (5.405 GHz, ~5.55 cm) {cite}`torres2012sentinel1`.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = [
    "Band", "Polarisation", "S2_BAND_INFO", "S2_BAND_NAMES", "S2_L2A_BAND_NAMES", "S1_POLARISATION_INFO",
    "S1_POLARISATION_NAMES",
    "VHR_BANDS", "KNOWN_OPTICAL_BANDS", "RGB", "FALSE_COLOUR", "RGBN", "BANDS_10M", "BANDS_20M",
    "BANDS_60M", "BANDS_10M_20M", "ALL", "SUBSETS", "get_band", "resolve_bands", "band_indices",
    "band_table", "polarisation_table", "S1_FREQUENCY_GHZ", "S1_WAVELENGTH_CM",
]


@dataclass(frozen=True)
class Band:
    """One Sentinel-2 MSI band.

    Attributes:
        name: band name as used in the ``band`` coordinate (``B01`` .. ``B12``, ``B8A``).
        resolution_m: native ground sampling distance in metres (10, 20 or 60).
        wavelength_nm: central wavelength in nm (Sentinel-2A).
        bandwidth_nm: spectral width in nm (Sentinel-2A).
        description: what the band is and what it is good for in urban mapping.
    """

    name: str
    resolution_m: int
    wavelength_nm: float
    bandwidth_nm: float
    description: str


@dataclass(frozen=True)
class Polarisation:
    """One Sentinel-1 polarisation channel (transmit/receive)."""

    name: str
    description: str


#: The 13 Sentinel-2 MSI bands (metadata objects) in L1C / OSCD / torchgeo order.
S2_BAND_INFO: tuple[Band, ...] = (
    Band("B01", 60, 442.7, 21, "coastal aerosol; atmospheric correction, not for mapping"),
    Band("B02", 10, 492.4, 66, "blue; water, shadows, true colour"),
    Band("B03", 10, 559.8, 36, "green; vegetation vigour, water, true colour"),
    Band("B04", 10, 664.6, 31, "red; chlorophyll absorption, NDVI, true colour"),
    Band("B05", 20, 704.1, 15, "red edge 1; start of the vegetation red-edge rise"),
    Band("B06", 20, 740.5, 15, "red edge 2; vegetation structure"),
    Band("B07", 20, 782.8, 20, "red edge 3; close to the NIR plateau"),
    Band("B08", 10, 832.8, 106, "near infrared (broad); vegetation plateau, NDVI, land/water"),
    Band("B8A", 20, 864.7, 21, "narrow NIR; NIR plateau without water-vapour edge"),
    Band("B09", 60, 945.1, 20, "water vapour absorption; atmospheric correction"),
    Band("B10", 60, 1373.5, 31, "SWIR cirrus; strong water-vapour absorption, cirrus detection only"),
    Band("B11", 20, 1613.7, 91, "SWIR 1; built-up and bare soil bright, NDBI, moisture"),
    Band("B12", 20, 2202.4, 175, "SWIR 2; minerals, built-up, burn scars"),
)

#: The 13 band names in L1C order (B01..B12 with B8A after B08): OSCD's files and the scenes' default.
S2_BAND_NAMES: tuple[str, ...] = tuple(b.name for b in S2_BAND_INFO)
#: The 12 band names of Level-2A products (no B10, the cirrus band), in file order.
S2_L2A_BAND_NAMES: tuple[str, ...] = tuple(n for n in S2_BAND_NAMES if n != "B10")

#: Sentinel-1 C-band radar centre frequency and wavelength.
S1_FREQUENCY_GHZ = 5.405
S1_WAVELENGTH_CM = 5.55

#: Sentinel-1 IW dual-polarisation channels.
S1_POLARISATION_INFO: tuple[Polarisation, ...] = (
    Polarisation("VV", "co-polarised (vertical transmit, vertical receive); strong double bounce "
                       "from buildings, surface roughness, very low over calm water"),
    Polarisation("VH", "cross-polarised (vertical transmit, horizontal receive); volume scattering "
                       "from vegetation canopies, some 5-10 dB below VV"),
)
S1_POLARISATION_NAMES: tuple[str, ...] = tuple(p.name for p in S1_POLARISATION_INFO)

#: Very-high-resolution RGB imagery (LEVIR-CD, WHU, DSIFN, SYSU): reflectance-like 0..1 (/255).
VHR_BANDS: tuple[str, ...] = ("R", "G", "B")

#: Every optical band name the scene schema accepts.
KNOWN_OPTICAL_BANDS: tuple[str, ...] = S2_BAND_NAMES + VHR_BANDS

# ---- handy subsets (tuples of names, in the order they are usually stacked) -------------------
#: True colour, red first (for display).
RGB: tuple[str, ...] = ("B04", "B03", "B02")
#: Standard false colour (NIR, red, green): vegetation red, built-up grey-cyan.
FALSE_COLOUR: tuple[str, ...] = ("B08", "B04", "B03")
#: True colour plus NIR.
RGBN: tuple[str, ...] = ("B04", "B03", "B02", "B08")
#: The four 10 m bands in canonical order.
BANDS_10M: tuple[str, ...] = tuple(b.name for b in S2_BAND_INFO if b.resolution_m == 10)
#: The six 20 m bands in canonical order.
BANDS_20M: tuple[str, ...] = tuple(b.name for b in S2_BAND_INFO if b.resolution_m == 20)
#: The three 60 m (atmospheric) bands.
BANDS_60M: tuple[str, ...] = tuple(b.name for b in S2_BAND_INFO if b.resolution_m == 60)
#: The ten 10 m + 20 m bands in canonical order (the usual "all land bands" input).
BANDS_10M_20M: tuple[str, ...] = tuple(b.name for b in S2_BAND_INFO if b.resolution_m in (10, 20))
#: All 13 bands.
ALL: tuple[str, ...] = S2_BAND_NAMES

#: Named subsets accepted by :func:`resolve_bands`.
SUBSETS: dict[str, tuple[str, ...]] = {
    "rgb": RGB,
    "false_colour": FALSE_COLOUR,
    "rgbn": RGBN,
    "10m": BANDS_10M,
    "20m": BANDS_20M,
    "60m": BANDS_60M,
    "10m20m": BANDS_10M_20M,
    "all": ALL,
    "vhr": VHR_BANDS,
    "sar": S1_POLARISATION_NAMES,
}

_BY_NAME = {b.name: b for b in S2_BAND_INFO}


def get_band(name: str) -> Band:
    """Return the :class:`Band` called ``name`` (``"B8A"``, ``"B04"`` ...).

    Raises ConfigError naming the known bands when ``name`` is not a Sentinel-2 band.
    """
    try:
        return _BY_NAME[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"unknown Sentinel-2 band {name!r}; known bands are {', '.join(S2_BAND_NAMES)}"
        ) from None


def resolve_bands(spec: str | Iterable[str]) -> tuple[str, ...]:
    """Band names of a subset name or a list of names, every name checked.

    ``spec`` is a subset name (``"rgb"``, ``"10m"``, ``"10m20m"``, ``"all"`` ...) or a list of
    band names.

    >>> resolve_bands("10m")
    ('B02', 'B03', 'B04', 'B08')
    >>> resolve_bands(["B8A", "B11"])
    ('B8A', 'B11')
    """
    if isinstance(spec, str):
        key = spec.lower().replace("+", "").replace("_", "").replace(" ", "")
        aliases = {k.replace("_", ""): v for k, v in SUBSETS.items()}
        if key in aliases:
            return aliases[key]
        if spec in KNOWN_OPTICAL_BANDS or spec in S1_POLARISATION_NAMES:
            return (spec,)
        raise ConfigError(
            f"unknown band subset {spec!r}; use one of {', '.join(SUBSETS)} or a list of band names"
        )
    names = tuple(spec)
    known = set(KNOWN_OPTICAL_BANDS) | set(S1_POLARISATION_NAMES)
    bad = [n for n in names if n not in known]
    if bad:
        raise ConfigError(
            f"unknown band name(s) {bad}; Sentinel-2 bands are {', '.join(S2_BAND_NAMES)}, "
            f"VHR bands {', '.join(VHR_BANDS)}, SAR polarisations {', '.join(S1_POLARISATION_NAMES)}"
        )
    if not names:
        raise ConfigError("an empty band list was given")
    return names


def band_indices(names: str | Iterable[str], order: Iterable[str] = S2_BAND_NAMES) -> list[int]:
    """Positions of ``names`` (a subset name or list) within ``order`` (default: canonical S2).

    Useful for numpy arrays stacked in canonical order: ``arr[band_indices("rgb")]``.
    """
    order = list(order)
    out = []
    for n in resolve_bands(names):
        if n not in order:
            raise ConfigError(f"band {n!r} is not among the available bands {order}")
        out.append(order.index(n))
    return out


def band_table() -> object:
    """A pandas DataFrame of the Sentinel-2 bands (index: band name)."""
    import pandas as pd

    rows = [
        {"band": b.name, "resolution_m": b.resolution_m, "wavelength_nm": b.wavelength_nm,
         "bandwidth_nm": b.bandwidth_nm, "description": b.description}
        for b in S2_BAND_INFO
    ]
    return pd.DataFrame(rows).set_index("band")


def polarisation_table() -> object:
    """A pandas DataFrame of the Sentinel-1 polarisations (index: polarisation name)."""
    import pandas as pd

    rows = [{"polarisation": p.name, "description": p.description} for p in S1_POLARISATION_INFO]
    return pd.DataFrame(rows).set_index("polarisation")
