"""SYSU-CD (Shi et al. 2022): Hong Kong aerial change pairs of 2007 and 2014, 0.5 m.

Layout as distributed: ``{train,val,test}/{time1,time2,label}`` (``.png``, 256 x 256; 12,000 /
4,000 / 4,000 pairs); also understood: ``A/ B/ label/`` folders. Labels are PNG coded **0/255**
(the authors' loader divides them by 255; not checked on a real file here: ``label_coding=``
overrides, and a file with other values is refused).
"""
from __future__ import annotations

from .vhr_pairs import VHRChangeDataset, VHRReader

__all__ = ["LAYOUT", "SYSUCD", "read_sysu_cd"]

#: Folders, label coding and provenance (epochs 2007 and 2014, years only).
LAYOUT = dict(
    title="SYSU-CD", t1=("time1", "A"), t2=("time2", "B"), label=("label",), label_coding="0/255",
    dates=("2007-01-01", "2014-01-01"), region="east_asia",
    time_note="epochs 2007 and 2014 (years only)",
    source="SYSU-CD (Shi et al. 2022), Hong Kong aerial imagery, 0.5 m",
    licence="research use (see the authors' repository)")


class SYSUCD(VHRReader):
    """SYSU-CD (Shi et al. 2022): Hong Kong 2007/2014 aerial pairs, 256 x 256."""

    key = "sysu_cd"
    sources = ("sysu_cd",)
    layout = LAYOUT


def read_sysu_cd(root, split: str | None = None, *, tile_size: int | None = None, validate: bool = True,
                 label_coding: str | None = None) -> VHRChangeDataset:
    """SYSU-CD: ``{train,val,test}/{time1,time2,label}``, or ``A/ B/ label/`` folders.

    256x256 PNG; 12,000/4,000/4,000 pairs; labels 0/255 (``label_coding`` overrides).
    """
    return VHRChangeDataset(root, "sysu_cd", split, tile_size=tile_size, validate=validate,
                            label_coding=label_coding)

