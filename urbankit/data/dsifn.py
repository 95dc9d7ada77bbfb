"""DSIFN-CD (Zhang et al. 2020): Google Earth change pairs of six Chinese cities.

Layout as distributed: ``{train,val,test}/{t1,t2,mask}`` (t1/t2 ``.jpg``, mask ``.png``/``.tif``);
also understood: ``A/ B/ label/`` folders (``.png``, the ChangeFormer DSIFN-CD-256 copy).

Facts of the real sample crops (checked on ``dsifn/`` crops): 256 x 256 RGB PNG with labels
``.png`` coded **0/255** and large change fractions (up to ~65 %). Pre-cut DSIFN-CD-256 patch
names ``<image>_<k>`` (ChangeFormer ``dsifn_cd_256.m``) number the 2 x 2 grid of 256-pixel
patches of a 512 x 512 image row by row (``patch_grid = 2``): the reader places each patch in its
parent image. Pairs whose split is recorded nowhere (e.g. a flat folder of crops) are ``test``
pairs by default (``default_split``), never silently training pairs.
"""
from __future__ import annotations

from .vhr_pairs import VHRChangeDataset, VHRReader

__all__ = ["DSIFN", "LAYOUT", "read_dsifn"]

#: Folders, label coding and provenance (acquisition dates are not distributed: placeholders).
LAYOUT = dict(
    title="DSIFN-CD", t1=("t1", "A"), t2=("t2", "B"), label=("mask", "label"), label_coding="0/255",
    dates=("1970-01-01", "1970-01-02"), region="east_asia", patch_grid=2,
    time_note="acquisition dates are not distributed; time holds placeholders",
    source="DSIFN-CD (Zhang et al. 2020), Google Earth imagery of six Chinese cities",
    licence="research use (see the authors' repository)")


class DSIFN(VHRReader):
    """DSIFN-CD (Zhang et al. 2020): Google Earth pairs of six Chinese cities."""

    key = "dsifn"
    sources = ("dsifn",)
    layout = LAYOUT


def read_dsifn(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
               default_split: str = "test", label_coding: str | None = None) -> VHRChangeDataset:
    """DSIFN-CD: ``{train,val,test}/{t1,t2,mask}`` as distributed, or ``A/ B/ label/`` crops (0/255)."""
    return VHRChangeDataset(root, "dsifn", split, tile_size=tile_size, validate=validate,
                            default_split=default_split, label_coding=label_coding)

