"""urbankit: mapping cities and their growth from Sentinel-1/2 with deep learning.

A notebook-first teaching and analysis kit for Sentinel-1 SAR and Sentinel-2 imagery.

The package is imported lazily: ``import urbankit`` is cheap, and sub-modules (``data``,
``models``, ``train``, ``sdg`` ...) load when first used.
"""
from __future__ import annotations

__version__ = "0.1.0"

#: Where the book and the Colab links point.
REPOSITORY_URL = "https://github.com/eo-ai4urban/urbankit"

from .errors import (  # noqa: E402
    BookError,
    ConfigError,
    DataFormatError,
    DownloadError,
    SceneValidationError,
    UrbankitError,
)
from .profiles import PROFILES, Profile, get_profile, resolve_device, seed_everything  # noqa: E402

__all__ = [
    "__version__", "REPOSITORY_URL", "PROFILES", "Profile", "get_profile", "resolve_device",
    "seed_everything", "UrbankitError", "ConfigError", "SceneValidationError", "DataFormatError",
    "DownloadError", "BookError", "environment_report",
]


def environment_report() -> object:
    """A pandas DataFrame of the versions of Python and the kit's main libraries."""
    import importlib
    import platform

    import pandas as pd

    rows = [("python", platform.python_version()), ("platform", platform.platform(terse=True)),
            ("urbankit", __version__)]
    for name in ("numpy", "pandas", "xarray", "rioxarray", "rasterio", "torch", "matplotlib", "scipy",
                 "dask", "papermill"):
        try:
            rows.append((name, getattr(importlib.import_module(name), "__version__", "?")))
        except ImportError:
            rows.append((name, "not installed"))
    return pd.DataFrame(rows, columns=["package", "version"]).set_index("package")
