"""Predict whole scenes with a trained model, score them per site, and show examples.

- :func:`predict`: probabilities for a whole image. By default the image is padded (reflect)
  to the network's multiple, predicted in one pass and cropped back: no tiling seams for
  chapter-size images. With ``tile=...`` (or for images above ``max_whole_pixels``) it
  predicts overlapping windows and blends them with a Hann (raised-cosine) weight, so large
  images fit in memory without visible seams. Input: a batch-like dict of arrays/tensors,
  or a scene (``xarray.Dataset`` of the scene schema) whose result is a DataArray on the
  scene's ``y``/``x`` coords. Scenes larger than memory (a whole Sentinel-2 tile) go to
  :func:`urbankit.cityscale.predict_to_cog`, which reads them by window and writes a COG.
- :func:`evaluate_scenes`: per-site confusion counts and scores, plus the pooled row that
  papers report (:func:`urbankit.metrics.per_site_table`).
- :func:`pick_examples`: the best, median and worst sites by a metric (chosen by the numbers,
  not by hand); :func:`urbankit.viz.plot_examples` draws their input / label / prediction
  panels (also reachable here as ``inference.plot_examples``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .data.schema import change_from_buildings, is_built
from .errors import ConfigError, SceneValidationError
from .viz import plot_examples  # the figure lives in viz; re-exported for the chapters that call it here

__all__ = [
    "predict", "scene_inputs", "scene_label", "hann_window", "evaluate_scenes", "pick_examples", "plot_examples",
    "DEFAULT_MULTIPLE", "input_key_date", "predict_padded",
]

#: Padding multiple used when the model does not say (``model.pad_multiple``): 2**5 covers
#: the 4 poolings of the Hafner U-Net (16) and 5-level encoders (32).
DEFAULT_MULTIPLE = 32
_INPUT_PREFIXES = ("optical_", "sar_")


# ----------------------------------------------------------------------------- inputs
def _is_scene(x) -> bool:
    try:
        import xarray as xr
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, xr.Dataset)


def _site_of(scene, default: str) -> str:
    return str(scene.attrs.get("site", default))


def scene_inputs(scene, keys: Sequence[str] | None = None, *, optical_bands: Sequence[str] | None = None,
                 sar_pols: Sequence[str] | None = None, sar_db_range: tuple[float, float] | None = None,
                 dates: tuple[int, int] = (0, -1), contract=None) -> dict[str, torch.Tensor]:
    """Model inputs ``{key: (1, C, H, W) float32}`` of a whole scene, by the torch layer's rules.

    With a ``contract`` (:class:`urbankit.data.contract.InputContract`, e.g. a trained model's
    ``model.input_contract``) the scene is checked against it and converted with
    :meth:`~urbankit.data.contract.InputContract.prepare`; ``optical_bands``, ``sar_pols`` and
    ``sar_db_range`` must then be None. Without one: optical reflectance as stored (NaN -> 0);
    SAR dB -> [0, 1] with ``sar_db_range`` (default: the scene's recorded ``sar_db_range`` attr,
    else (-25, 0) dB; clipped, NaN -> 0).
    ``_t1`` is the date ``dates[0]``, ``_t2`` the date ``dates[1]`` (first and last by default).
    ``keys`` defaults to every optical/SAR key the scene can give.
    """
    from .data.contract import scene_sar_db_range
    from .data.normalize import DEFAULT_DB_RANGE, model_input

    site = _site_of(scene, "scene")
    if contract is not None:
        if optical_bands is not None or sar_pols is not None or sar_db_range is not None:
            raise ConfigError("scene_inputs: pass either contract= or optical_bands/sar_pols/sar_db_range, "
                              "not both (the model's contract names its channels and SAR range)")
        return _contract_inputs(scene, keys, dates, contract)
    if sar_db_range is None:
        sar_db_range = scene_sar_db_range(scene) or DEFAULT_DB_RANGE
    if keys is None:
        keys = [f"{m}_{t}" for m in ("optical", "sar") if m in scene.data_vars for t in ("t1", "t2")]
    out: dict[str, torch.Tensor] = {}
    for key in keys:
        modality, _, date = key.rpartition("_")
        if modality not in ("optical", "sar") or date not in ("t1", "t2"):
            continue  # labels and flags are not inputs
        if modality not in scene.data_vars:
            raise SceneValidationError(site, modality, f"is missing, but the model reads {key!r}")
        da = scene[modality]
        dim = "band" if modality == "optical" else "polarisation"
        names = optical_bands if modality == "optical" else sar_pols
        if names is not None:
            missing = [n for n in names if n not in da[dim].values.tolist()]
            if missing:
                raise SceneValidationError(site, modality, f"has no {dim}(s) {missing}; it has "
                                           f"{da[dim].values.tolist()}")
            da = da.sel({dim: list(names)})
        if "time" in da.dims:
            idx = dates[0] if date == "t1" else dates[1]
            da = da.isel(time=idx)
        arr = model_input(da.transpose(dim, "y", "x").values, modality, sar_db_range)
        out[key] = torch.from_numpy(arr)[None]
    if not out:
        raise SceneValidationError(site, None, f"gives none of the input keys {list(keys)}")
    return out


def input_key_date(key: str, dates: tuple[int, int]) -> tuple[str, int] | None:
    """``(modality, time index)`` of an input key (``optical_t2`` -> ``("optical", dates[1])``).

    None for keys that are not image inputs (labels, flags).
    """
    modality, _, date = key.rpartition("_")
    if modality not in ("optical", "sar") or date not in ("t1", "t2"):
        return None
    return modality, dates[0] if date == "t1" else dates[1]


def _contract_inputs(scene, keys, dates, contract) -> dict[str, torch.Tensor]:
    """:func:`scene_inputs` under an input contract (whole images, so per-image norms hold)."""
    site = _site_of(scene, "scene")
    if keys is None:
        keys = [f"{m}_{t}" for m in ("optical", "sar") if contract.channels(m) for t in ("t1", "t2")]
    out: dict[str, torch.Tensor] = {}
    cache: dict[str, np.ndarray] = {}
    for key in keys:
        parts = input_key_date(key, dates)
        if parts is None:
            continue
        modality, t = parts
        if modality not in cache:
            cache[modality] = contract.scene_arrays(scene, modality)
        arr = cache[modality][t]
        out[key] = torch.from_numpy(np.ascontiguousarray(arr))[None]
    if not out:
        raise SceneValidationError(site, None, f"gives none of the input keys {list(keys)}")
    return out


def scene_label(scene, label_key: str) -> np.ndarray:
    """The (H, W) float32 0/1 label of a scene for ``label_key``.

    Args:
        scene: a schema scene.
        label_key: ``"change"`` (the ``change`` variable, else new built-up between the first
            and last ``buildings`` date), ``"buildings_t1"`` or ``"buildings_t2"``.

    Returns:
        float32 (H, W) array of 0/1.

    Raises:
        SceneValidationError: the scene holds no label for that key.
    """
    site = _site_of(scene, "scene")
    if label_key == "change":
        if "change" in scene.data_vars:
            return np.asarray(scene["change"].transpose("y", "x").values, dtype=np.float32)
        if "buildings" in scene.data_vars:
            b = scene["buildings"].transpose("time", "y", "x").values
            return change_from_buildings(b[0], b[-1]).astype(np.float32)
    elif label_key in ("buildings_t1", "buildings_t2") and "buildings" in scene.data_vars:
        b = scene["buildings"].transpose("time", "y", "x").values
        return is_built(b[0 if label_key == "buildings_t1" else -1]).astype(np.float32)
    raise SceneValidationError(site, label_key, "no label for this key in the scene")


def _model_inputs(model, inputs: Mapping[str, Any]) -> tuple[dict[str, torch.Tensor], bool]:
    """The image tensors the model reads, as (B, C, H, W) float32; and whether input was unbatched."""
    keys = list(getattr(model, "input_keys", ()) or [k for k in inputs if k.startswith(_INPUT_PREFIXES)])
    if not keys:
        raise ConfigError("predict: cannot tell which inputs the model reads (no model.input_keys and no "
                          "optical_*/sar_* key in the inputs)")
    out, unbatched, size = {}, None, None
    for k in keys:
        if k not in inputs:
            raise ConfigError(f"predict: the model reads {keys} but the inputs have no {k!r} "
                              f"(they have {sorted(inputs)})")
        x = torch.as_tensor(np.asarray(inputs[k]) if not torch.is_tensor(inputs[k]) else inputs[k])
        if x.dim() in (3, 4):  # refuse an impossible request before any copy is made
            _check_output_size(int(x.shape[0]) if x.dim() == 4 else 1, int(x.shape[-2]), int(x.shape[-1]))
        x = torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0)  # the kit's NaN rule
        if x.dim() == 3:
            x, this_unbatched = x[None], True
        elif x.dim() == 4:
            this_unbatched = False
        else:
            raise ConfigError(f"predict: input {k!r} must be (C, H, W) or (B, C, H, W), got {tuple(x.shape)}")
        if unbatched is not None and this_unbatched != unbatched:
            raise ConfigError("predict: mix of batched (B, C, H, W) and unbatched (C, H, W) inputs")
        if size is not None and tuple(x.shape[-2:]) != size:
            raise ConfigError(f"predict: input {k!r} is {tuple(x.shape[-2:])} px, others are {size}")
        unbatched, size = this_unbatched, tuple(x.shape[-2:])
        out[k] = x
    if min(size) < 1:
        raise ConfigError(f"predict: the input is {size[0]}x{size[1]} px; it needs at least 1x1 px")
    return out, bool(unbatched)


#: Largest probability output :func:`predict` builds in memory (bytes); larger requests
#: are refused with a message instead of failing inside torch's allocator.
MAX_OUTPUT_BYTES = 8 * 1024**3


def _check_output_size(batch: int, h: int, w: int) -> None:
    need = batch * h * w * 4 * 2  # the probabilities and the blending weights, float32
    if need > MAX_OUTPUT_BYTES:
        raise ConfigError(
            f"predict: {batch} x {h} x {w} px needs about {need / 1024**3:.1f} GiB for its output alone, "
            f"more than the {MAX_OUTPUT_BYTES / 1024**3:.0f} GiB predict keeps in memory; predict the image "
            "in parts (crop it with scene.isel(y=..., x=...)) and write each part to disk")


def _scene_options(model, scene_options: Mapping[str, Any] | None) -> dict[str, Any]:
    """Scene-conversion options of ``predict``: the model's input contract unless told otherwise."""
    options = dict(scene_options or {})
    contract = getattr(model, "input_contract", None)
    if contract is None or "contract" in options:
        return options
    clash = sorted(k for k in ("optical_bands", "sar_pols", "sar_db_range") if options.get(k) is not None)
    if clash:
        raise ConfigError(f"predict: the model carries an input contract ({contract.describe()}); "
                          f"drop the scene options {clash}, the contract sets them")
    options["contract"] = contract
    return options


# ----------------------------------------------------------------------------- padding / windows
def _pad(x: torch.Tensor, top: int, bottom: int, left: int, right: int, mode: str) -> torch.Tensor:
    """Pad (B, C, H, W); reflect falls back to replicate where the image is too small for it."""
    if not (top or bottom or left or right):
        return x
    h, w = x.shape[-2:]
    if mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= w):
        mode = "replicate"
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=0.0)
    return F.pad(x, (left, right, top, bottom), mode=mode)


def hann_window(size: int, kind: str = "hann") -> torch.Tensor:
    """2-D blending weights of a ``size`` x ``size`` window.

    ``"hann"``: raised cosine, ``sin^2(pi (i + 1/2) / size)``, positive everywhere;
    ``"uniform"``: all ones.
    """
    if kind == "uniform":
        return torch.ones(size, size)
    if kind not in ("hann", "cosine"):
        raise ConfigError(f"window must be 'hann' (or 'cosine') or 'uniform', got {kind!r}")
    i = torch.arange(size, dtype=torch.float64)
    w1 = torch.sin(math.pi * (i + 0.5) / size) ** 2
    return torch.outer(w1, w1).float()


def _starts(length: int, tile: int, stride: int) -> list[int]:
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile + 1, stride))
    if starts[-1] != length - tile:
        starts.append(length - tile)
    return starts


def _forward(model, tensors: Mapping[str, torch.Tensor], device, amp_on, amp_dtype,
             keys: Sequence[str] | None, channels_last: bool = False) -> dict[str, torch.Tensor]:
    batch = {k: v.to(device, non_blocking=True) for k, v in tensors.items()}
    if channels_last:
        batch = {k: v.contiguous(memory_format=torch.channels_last) if v.dim() == 4 else v
                 for k, v in batch.items()}
    with torch.autocast(device.type, dtype=amp_dtype, enabled=amp_on):
        out = model(batch)
    if not isinstance(out, Mapping):
        raise ConfigError(f"predict: the model must return a dict of logits, got {type(out).__name__}")
    wanted = keys if keys is not None else list(out)
    missing = [k for k in wanted if k not in out]
    if missing:
        raise ConfigError(f"predict: the model has no output {missing}; it returns {sorted(out)}")
    return {k: out[k].float() for k in wanted}


def predict_padded(model, tensors, multiple, pad_mode, device, amp_on, amp_dtype, keys, channels_last=False):
    """Probabilities ``{key: (B, C, H, W)}`` of whole images, the one forward rule of the kit.

    ``tensors`` ``{input key: (B, C, H, W) float32}`` are padded to a multiple of ``multiple``
    at the bottom/right (``pad_mode``), run through ``model`` on ``device`` (autocast when
    ``amp_on``; channels-last memory format when asked), passed through a sigmoid and cropped
    back; ``keys`` picks the outputs (None: all). Used by :func:`predict` and, per window, by
    :mod:`urbankit.cityscale`.
    """
    h, w = next(iter(tensors.values())).shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    padded = {k: _pad(v, 0, ph, 0, pw, pad_mode) for k, v in tensors.items()}
    logits = _forward(model, padded, device, amp_on, amp_dtype, keys, channels_last)
    return {k: torch.sigmoid(v[..., :h, :w]).cpu() for k, v in logits.items()}


def _predict_sliding(model, tensors, tile, overlap, window, batch_size, multiple, pad_mode, device,
                     amp_on, amp_dtype, keys, channels_last=False):
    first = next(iter(tensors.values()))
    b, (h, w) = first.shape[0], first.shape[-2:]
    tile = int(math.ceil(tile / multiple) * multiple)
    if not 0 <= overlap < tile:
        raise ConfigError(f"predict: overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    m = overlap // 2  # reflect margin: image borders get context like interior pixels
    hh, ww = max(h + 2 * m, tile), max(w + 2 * m, tile)
    padded = {k: _pad(v, m, hh - h - m, m, ww - w - m, pad_mode) for k, v in tensors.items()}
    stride = tile - overlap
    weight = hann_window(tile, window)
    ys, xs = _starts(hh, tile, stride), _starts(ww, tile, stride)
    windows = [(i, y, x) for i in range(b) for y in ys for x in xs]
    acc: dict[str, torch.Tensor] = {}
    wsum = torch.zeros(b, 1, hh, ww)
    for s in range(0, len(windows), batch_size):
        chunk = windows[s:s + batch_size]
        batch = {k: torch.stack([v[i, :, y:y + tile, x:x + tile] for i, y, x in chunk])
                 for k, v in padded.items()}
        probs = {k: torch.sigmoid(v).cpu() for k, v in _forward(model, batch, device, amp_on, amp_dtype,
                                                                    keys, channels_last).items()}
        for k, p in probs.items():
            if k not in acc:
                acc[k] = torch.zeros(b, p.shape[1], hh, ww)
            for n, (i, y, x) in enumerate(chunk):
                acc[k][i, :, y:y + tile, x:x + tile] += weight * p[n]
        for i, y, x in chunk:
            wsum[i, :, y:y + tile, x:x + tile] += weight
    return {k: (v / wsum)[..., m:m + h, m:m + w] for k, v in acc.items()}


@torch.no_grad()
def predict(model: torch.nn.Module, inputs, *, output_key: str | None = "change", tile: int | None = None,
            overlap: int = 64, window: str = "hann", batch_size: int = 4, multiple: int | None = None,
            pad_mode: str = "reflect", device="auto", amp: bool | str = False, channels_last: bool = False,
            max_whole_pixels: int = 4096 * 4096, scene_options: Mapping[str, Any] | None = None):
    """Probabilities (sigmoid of the logits) of a whole image.

    Args:
        model: a module taking the batch dict (reads ``model.input_keys``) and returning logits.
        inputs: a dict ``{key: (C, H, W) or (B, C, H, W)}`` of arrays/tensors, or a scene
            (``xarray.Dataset``; converted with :func:`scene_inputs` and ``scene_options``).
        output_key: the output to return; None returns a dict of all outputs.
        tile: None predicts the whole image at once (padded to ``multiple``, cropped back);
            an int predicts ``tile`` x ``tile`` windows (rounded up to ``multiple``) that overlap
            by ``overlap`` pixels and are blended with ``window`` weights.
        window: ``"hann"`` (raised cosine) or ``"uniform"`` blending weights.
        batch_size: windows per forward pass in sliding mode.
        multiple: pad H and W to a multiple of this (default ``model.pad_multiple`` or 32).
        pad_mode: ``"reflect"`` (default), ``"replicate"`` or ``"constant"`` (zeros).
        device, amp: where to run; autocast (:func:`urbankit.profiles.amp_settings`): on CUDA
            ``True``/``"bf16"``/``"fp16"``, on CPU ``"bf16"`` (bfloat16 probabilities agree with
            float32 to about 1e-2; tested).
        channels_last: run the model in channels-last memory format (the model's weights are
            converted for the call and back afterwards; same results to float rounding).
        max_whole_pixels: images with more pixels than this switch to sliding windows of 512.

    Returns:
        float32 numpy probabilities, (H, W) for unbatched input or (B, H, W) for batched input
        (single-channel outputs lose their channel axis); for a scene an ``xarray.DataArray`` on
        the scene's ``y``/``x`` coords named ``<output_key>_probability``. A dict of those when
        ``output_key`` is None.
    """
    from .profiles import amp_settings, resolve_device

    scene = inputs if _is_scene(inputs) else None
    if scene is not None:
        options = _scene_options(model, scene_options)
        inputs = scene_inputs(scene, getattr(model, "input_keys", None) or None, **options)
    elif not isinstance(inputs, Mapping):
        raise ConfigError("predict: inputs must be a dict of arrays/tensors or a scene, "
                          f"got {type(inputs).__name__}")
    tensors, unbatched = _model_inputs(model, inputs)
    unbatched = unbatched or scene is not None  # a scene is one (1, C, H, W) sample
    multiple = int(multiple or getattr(model, "pad_multiple", None) or DEFAULT_MULTIPLE)
    if multiple < 1:
        raise ConfigError(f"predict: multiple must be >= 1, got {multiple}")
    if pad_mode not in ("reflect", "replicate", "constant"):
        raise ConfigError(f"predict: pad_mode must be 'reflect', 'replicate' or 'constant', got {pad_mode!r}")
    device = resolve_device(device)
    amp_on, amp_dtype, _ = amp_settings(amp, device)
    keys = [output_key] if output_key is not None else None
    first = next(iter(tensors.values()))
    h, w = first.shape[-2:]
    _check_output_size(int(first.shape[0]), int(h), int(w))
    if tile is None and h * w > max_whole_pixels:
        tile = 512
    window_px = getattr(model, "inference_window", None) if getattr(model, "size_dependent", False) else None
    if tile is None and window_px and (h > window_px or w > window_px):
        tile = int(window_px)  # a size-dependent model predicts on the windows it was trained on
        overlap = min(int(overlap), tile // 4)
    was_training = model.training
    model.eval()
    try:
        model.to(device)
        if channels_last:
            model.to(memory_format=torch.channels_last)
        if tile is None:
            probs = predict_padded(model, tensors, multiple, pad_mode, device, amp_on, amp_dtype, keys, channels_last)
        else:
            if tile < 1 or batch_size < 1:
                raise ConfigError(f"predict: tile and batch_size must be >= 1, got {tile}, {batch_size}")
            probs = _predict_sliding(model, tensors, int(tile), int(overlap), window, int(batch_size),
                                     multiple, pad_mode, device, amp_on, amp_dtype, keys, channels_last)
    finally:
        model.train(was_training)
        if channels_last:
            model.to(memory_format=torch.contiguous_format)

    result = {k: _probability_output(p, k, unbatched, scene) for k, p in probs.items()}
    return result[output_key] if output_key is not None else result


def _probability_output(p: torch.Tensor, key: str, unbatched: bool, scene: Any) -> Any:
    """The returned form of one output's (B, C, H, W) probabilities.

    float32 numpy with a single channel axis (and, for unbatched input, the batch axis)
    dropped; for a scene a georeferenced ``<key>_probability`` DataArray on its ``y``/``x``.
    """
    arr = p.numpy().astype(np.float32, copy=False)
    if arr.shape[1] == 1:
        arr = arr[:, 0]
    if unbatched:
        arr = arr[0]
    if scene is None or arr.ndim != 2:
        return arr
    import xarray as xr

    arr = xr.DataArray(arr, dims=("y", "x"), coords={"y": scene["y"], "x": scene["x"]}, name=f"{key}_probability",
                       attrs={"long_name": f"probability of {key}", "units": "1", "site": scene.attrs.get("site", "")})
    if getattr(scene, "rio", None) is not None:
        try:
            crs = scene.rio.crs
            if crs is not None:
                arr = arr.rio.write_crs(crs)
        except Exception:  # noqa: BLE001 - georeference is a courtesy here
            pass
    return arr


# ----------------------------------------------------------------------------- evaluation
def evaluate_scenes(model: torch.nn.Module, scenes_or_batches: Iterable[Any], output_key: str = "change",
                    label_key: str = "change", threshold: float = 0.5, *,
                    regions: Mapping[str, str] | None = None,
                    return_predictions: bool = False, scene_options: Mapping[str, Any] | None = None,
                    predictions: Mapping[str, Any] | None = None, **predict_kwargs):
    """Per-site scores and the pooled row (:func:`urbankit.metrics.per_site_table`).

    Args:
        model: the trained model.
        scenes_or_batches: scenes (``xarray.Dataset``, one site each; whole-scene prediction
            with :func:`predict`) and/or batch dicts (whose ``site`` list says which site each
            sample belongs to; samples of one site are pooled; unlabelled samples are skipped).
        output_key, label_key: the output head and the label compared at ``threshold``.
        regions: ``{site: region}``; by default taken from the scenes' ``region`` attribute
            when every scene has one.
        return_predictions: also return ``{site: probability array}`` (for scenes, and for
            batches: the stacked samples of that site).
        predictions: ``{site: probability map}`` already predicted for the scenes (e.g. one
            pass that gave every output head); a scene missing from it is an error.
        predict_kwargs: passed to :func:`predict` (``tile``, ``device``, ...).

    Returns:
        The DataFrame (indexed by site, last row ``pooled``), or ``(table, predictions)``.
    """
    from .metrics import ConfusionCounter, per_site_table

    counters: dict[str, ConfusionCounter] = {}
    preds: dict[str, Any] = {}
    found_regions: dict[str, str] = {}
    n_scenes = 0
    for n, item in enumerate(scenes_or_batches):
        if _is_scene(item):
            n_scenes += 1
            site = _site_of(item, f"scene{n}")
            if "region" in item.attrs:
                found_regions[site] = str(item.attrs["region"])
            if predictions is None:
                prob = predict(model, item, output_key=output_key, scene_options=scene_options, **predict_kwargs)
            elif site in predictions:
                prob = predictions[site]
            else:
                raise ConfigError(f"evaluate_scenes: no prediction given for site {site!r} "
                                  f"(predictions for {sorted(predictions)})")
            label = scene_label(item, label_key)
            counters.setdefault(site, ConfusionCounter()).update(
                np.asarray(prob), label, threshold=threshold, from_logits=False)
            if return_predictions:
                preds[site] = prob
        elif isinstance(item, Mapping):
            prob = predict(model, item, output_key=output_key, **predict_kwargs)
            prob = prob if prob.ndim == 3 else prob[None]
            if label_key not in item:
                raise ConfigError(f"evaluate_scenes: batch {n} has no label {label_key!r} "
                                  f"(keys {sorted(item)})")
            label = torch.as_tensor(item[label_key]).float().cpu().numpy()
            label = label.reshape(prob.shape)
            sites = list(item.get("site") or [f"batch{n}"] * prob.shape[0])
            labelled = item.get("labelled")
            labelled = (np.ones(prob.shape[0], bool) if labelled is None
                        else torch.as_tensor(labelled).cpu().numpy().astype(bool).reshape(-1))
            for i, site in enumerate(sites):
                if not labelled[i]:
                    continue
                counters.setdefault(str(site), ConfusionCounter()).update(
                    prob[i], label[i], threshold=threshold, from_logits=False)
                if return_predictions:
                    preds.setdefault(str(site), []).append(prob[i])
        else:
            raise ConfigError(f"evaluate_scenes: item {n} is a {type(item).__name__}; expected a scene "
                              "(xarray.Dataset) or a batch dict")
    if not counters:
        raise ConfigError("evaluate_scenes: no labelled scene or sample to evaluate")
    if regions is None and n_scenes and len(found_regions) == len(counters):
        regions = found_regions
    table = per_site_table(counters, regions=regions)
    if return_predictions:
        preds = {k: (np.stack(v) if isinstance(v, list) else v) for k, v in preds.items()}
        return table, preds
    return table


def pick_examples(per_site_table, metric: str = "f1", pooled_label: str = "pooled") -> dict[str, str]:
    """The sites with the best, the median and the worst ``metric`` (pooled row and NaN excluded).

    Chosen by the numbers, not by hand: ``{"best": site, "median": site, "worst": site}``. The
    median is the middle site of the sorted list (the lower middle for an even count); ties
    are broken by site name, so the choice is deterministic. A site is picked once: with two
    sites there is no median (``{"best", "worst"}``), with one only ``"best"``.
    """
    if metric not in per_site_table.columns:
        raise ConfigError(f"pick_examples: no column {metric!r}; columns: {list(per_site_table.columns)}")
    rows = [(float(v), str(site)) for site, v in per_site_table[metric].items()
            if str(site) != pooled_label and v is not None and not (isinstance(v, float) and math.isnan(v))]
    if not rows:
        raise ConfigError(f"pick_examples: no site with a defined {metric}")
    rows.sort(key=lambda r: (r[0], r[1]))
    picks = {"best": rows[-1][1], "median": rows[(len(rows) - 1) // 2][1], "worst": rows[0][1]}
    if len(rows) == 2:
        del picks["median"]  # the lower middle of two sites is the worst one
    return picks if len(rows) > 1 else {"best": rows[0][1]}
