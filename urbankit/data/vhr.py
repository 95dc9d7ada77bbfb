"""The four very-high-resolution (VHR) building change datasets, in one place for convenience.

Each dataset has its own module (layout, label coding, provenance, reader class, sample writer);
what they share lives in :mod:`urbankit.data.vhr_pairs`. This module re-exports their public
names so that ``from urbankit.data import vhr`` reaches every one of them:

=========== ============================== ===================================================
dataset     module                         as distributed
=========== ============================== ===================================================
LEVIR-CD    :mod:`urbankit.data.levir_cd`  ``{train,val,test}/{A,B,label}/*.png`` (1024 x 1024)
WHU-CD      :mod:`urbankit.data.whu_cd`    two large GeoTIFF epochs (2012, 2016) + change label
DSIFN-CD    :mod:`urbankit.data.dsifn`     ``{train,val,test}/{t1,t2,mask}``
SYSU-CD     :mod:`urbankit.data.sysu_cd`   ``{train,val,test}/{time1,time2,label}`` (256 x 256)
=========== ============================== ===================================================

:data:`VHR_DATASETS` maps each reader key to its layout (folders, label coding, dates, provenance).
"""
from __future__ import annotations

from .dsifn import DSIFN, read_dsifn
from .levir_cd import LEVIRCD, read_levir_cd, write_levir_pair
from .sysu_cd import SYSUCD, read_sysu_cd
from .vhr_pairs import (
    LABEL_CODINGS,
    SPLITS,
    Pair,
    VHRChangeDataset,
    check_label_coding,
    decode_label,
    read_pair,
    read_vhr,
    tile_scene,
    write_pair_sample,
)
from .whu_cd import WHU_SPLIT, WHUCD, WHUEpochTiles, read_whu_cd

__all__ = ["DSIFN", "LABEL_CODINGS", "LEVIRCD", "SPLITS", "SYSUCD", "VHR_DATASETS", "WHUCD", "WHU_SPLIT", "Pair",
           "VHRChangeDataset", "WHUEpochTiles", "check_label_coding", "decode_label", "read_dsifn",
           "read_levir_cd", "read_pair", "read_sysu_cd", "read_vhr", "read_whu_cd", "tile_scene",
           "write_levir_pair", "write_pair_sample"]

#: reader key -> the dataset's layout (the ``layout`` of its reader class)
VHR_DATASETS: dict[str, dict] = {cls.key: cls.layout for cls in (LEVIRCD, WHUCD, DSIFN, SYSUCD)}
