"""Data spine: scene schema, bands, normalisation, the synthetic twin and the dataset readers.

The scene schema and its validator, band metadata, normalisation, the synthetic city generator
("urban twin") and the dataset readers (:mod:`urbankit.data.reader`).

One scene = one ``xarray.Dataset`` per site with variables ``optical`` (time, band, y, x),
``sar`` (time, polarisation, y, x), ``buildings`` (time, y, x), ``change`` (y, x) and
optionally ``population`` (time, y, x); see CONTRIBUTING.md. Sub-modules load lazily::

    from urbankit.data import bands, normalize, schema, synthetic
    scene = synthetic.make_site(size=128, n_dates=6, seed=0)
    schema.validate_scene(scene)

Readers never import torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_SUBMODULES = {"bands", "schema", "normalize", "synthetic", "samples", "oscd", "spacenet7", "vhr",
               "download", "generic", "sources", "cache", "synthetic_region", "raster", "checks",
               "reader", "sample_files", "ghsl", "worldpop", "population_grids", "contract",
               "vhr_pairs", "levir_cd", "whu_cd", "dsifn", "sysu_cd"}

# convenience re-exports: name -> sub-module
_EXPORTS = {
    "validate_scene": "schema",
    "make_scene": "schema",
    "scene_summary": "schema",
    "s2_to_reflectance": "normalize",
    "db_to_linear": "normalize",
    "linear_to_db": "normalize",
    "db_to_unit": "normalize",
    "unit_to_db": "normalize",
    "percentile_stretch": "normalize",
    "make_site": "synthetic",
    "tiny_sentinel2": "synthetic",
}

__all__ = sorted({"bands", "schema", "normalize", "synthetic"} | set(_EXPORTS))


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
