"""Image corruptions for robustness tests: strip, salt / salt-and-pepper, speckle, clouds.

Every corruption takes images of shape (C, H, W) or (B, C, H, W) (numpy arrays or torch
tensors; the result has the same type, dtype and device), a rate ``r`` in [0, 1] and a seed
or ``numpy.random.Generator``, and returns a corrupted **copy**. Rate 0 returns an exact copy.
In a batch, every image gets its own random draw (one generator, drawn in batch order).

Definitions (common ones; the HDANet paper, Wang et al. 2022, does not give its exact protocol,
so these are the kit's choices):

- :func:`strip_noise`: ⌊r·H⌋ rows (or ⌊r·W⌋ columns) chosen uniformly at random without
  replacement; the same rows on all bands are set to the maximum value (sensor-like striping).
  ``mode="offset"`` instead adds one N(0, sigma) offset per row and band, then clips.
- :func:`salt_noise`: ⌊r·H·W⌋ pixel locations chosen without replacement; all bands set to the
  maximum value. :func:`salt_and_pepper_noise`: of those locations, ⌊n/2⌋ go to the minimum (0)
  and the rest to the maximum.
- :func:`speckle_noise`: multiplicative gamma noise with mean 1 and standard deviation ``r``
  (``L = 1/r²`` looks, the fully developed speckle model of SAR intensities), then clipped.
- :func:`cloud_noise`: ⌊r·H·W⌋ pixels covered by smooth blobs (the highest values of a
  bilinearly upsampled random field), set to the maximum (bright cloud) or to NaN
  (``fill="nan"``: missing data, as in the scene schema).

Sentinel-specific corruptions (for the model inputs of the kit, see CONTRIBUTING.md: optical
reflectance 0..1, SAR dB scaled to [0, 1] with a dB range):

- :func:`sar_speckle`: extra multiplicative gamma speckle with ``looks`` equivalent looks on the
  linear backscatter, i.e. ``+10·log10(g)`` dB with g ~ Gamma(L, 1/L), on dB or scaled-dB images.
- :func:`haze_noise`: thin haze, ``x' = (1 - t)·x + t·airlight`` with a smooth transmission
  loss t in [r/2, r] per pixel (the same for all bands unless ``band_weights`` are given).
- :func:`shift_image` / :func:`misregistration`: a translation by whole pixels (edges
  replicated), the co-registration error between two acquisitions.
- :func:`drop_modality`: a sample whose SAR or optical inputs are absent (filled with a value).

Sample-level corruptions (:data:`SAMPLE_CORRUPTIONS`, :func:`corrupt_sample`) apply one of these
to the right keys of a sample dict (``optical_t1``, ``sar_t2``, ...); :func:`robustness_table`
runs several predictors over corrupted samples and reports P/R/F1/IoU/kappa per model,
corruption and level.

"Maximum value" defaults to 1.0 for float images (the kit's reflectance 0..1) and to the
dtype's maximum for integer images (255 for uint8); pass ``max_value`` to override.

:func:`robustness_sweep` applies corruptions at several rates to the test images of both dates
(independently), predicts with a user function and reports pooled F1/IoU and the relative drop
with respect to the clean images.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ConfigError

__all__ = [
    "CORRUPTIONS", "SAMPLE_CORRUPTIONS", "as_generator", "cloud_mask", "cloud_noise", "corrupt",
    "corrupt_sample", "drop_modality", "haze_noise", "misregistration", "robustness_sweep",
    "robustness_table", "salt_and_pepper_noise", "salt_noise", "sar_speckle", "shift_image",
    "speckle_noise", "strip_noise",
]

SeedLike = int | np.random.Generator | None


def as_generator(rng: SeedLike) -> np.random.Generator:
    """A numpy Generator from a seed (int), a Generator (returned as is) or None (fresh entropy)."""
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or (isinstance(rng, (int, np.integer)) and not isinstance(rng, bool) and rng >= 0):
        return np.random.default_rng(rng)
    raise ConfigError(f"noise: rng must be a non-negative int seed, a numpy Generator or None, got {rng!r}")


def _check_rate(rate: float, what: str) -> float:
    rate = float(rate)
    if not (0.0 <= rate <= 1.0) or math.isnan(rate):
        raise ConfigError(f"{what}: rate must be in [0, 1], got {rate!r}")
    return rate


def _n_of(rate: float, total: int) -> int:
    """⌊rate·total⌋, robust to float round-off (0.29 * 100 gives 29, not 28)."""
    return math.floor(rate * total + 1e-9)


def _to_numpy(images: Any, what: str) -> tuple[np.ndarray, Callable[[np.ndarray], Any]]:
    """(a (B, C, H, W) numpy copy, a function turning a result back into the input's type/shape)."""
    torch_like = hasattr(images, "detach") and hasattr(images, "cpu")
    if torch_like:
        import torch

        arr = images.detach().cpu().numpy().copy()
        dtype, device = images.dtype, images.device

        def back_torch(a: np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(a)).to(device=device, dtype=dtype)
        back = back_torch
    else:
        arr = np.array(images, copy=True)

        def back_numpy(a: np.ndarray):
            return a
        back = back_numpy
    if arr.ndim not in (3, 4):
        raise ConfigError(f"{what}: images must be (C, H, W) or (B, C, H, W), got shape {arr.shape}")
    if arr.ndim == 3:
        def unbatch(a: np.ndarray, _back=back):
            return _back(a[0])
        return arr[None], unbatch
    return arr, back


def _max_value(arr: np.ndarray, max_value: float | None) -> float:
    if max_value is not None:
        return float(max_value)
    if np.issubdtype(arr.dtype, np.integer):
        return float(np.iinfo(arr.dtype).max)
    return 1.0


def strip_noise(images: Any, rate: float, rng: SeedLike = None, *, axis: str = "rows", mode: str = "max",
                max_value: float | None = None, sigma: float = 50.0 / 255.0) -> Any:
    """Horizontal (``axis="rows"``) or vertical (``"columns"``) stripes.

    Chooses ⌊rate·H⌋ rows (⌊rate·W⌋ columns) without replacement, the same for all bands of an
    image. ``mode="max"`` sets them to ``max_value``; ``mode="offset"`` adds N(0, ``sigma``) per
    stripe and band (default sigma = 50/255, i.e. 50 grey levels on 0..1 images; pass
    ``sigma=50`` for 8-bit images) and clips to [0, max_value].

    images: (C, H, W) or (B, C, H, W). Returns a corrupted copy of the same type and shape.
    """
    rate = _check_rate(rate, "strip_noise")
    if axis not in ("rows", "columns"):
        raise ConfigError(f"strip_noise: axis must be 'rows' or 'columns', got {axis!r}")
    if mode not in ("max", "offset"):
        raise ConfigError(f"strip_noise: mode must be 'max' or 'offset', got {mode!r}")
    arr, back = _to_numpy(images, "strip_noise")
    gen = as_generator(rng)
    top = _max_value(arr, max_value)
    length = arr.shape[2] if axis == "rows" else arr.shape[3]
    n = _n_of(rate, length)
    for b in range(arr.shape[0]):
        if n == 0:
            continue
        lines = gen.choice(length, size=n, replace=False)
        view = arr[b] if axis == "rows" else np.swapaxes(arr[b], 1, 2)  # (C, lines, other)
        if mode == "max":
            view[:, lines, :] = top
        else:
            offsets = gen.normal(0.0, sigma, size=(arr.shape[1], n, 1))
            view[:, lines, :] = np.clip(view[:, lines, :] + offsets, 0.0, top).astype(arr.dtype)
    return back(arr)


def _pixel_choice(gen: np.random.Generator, h: int, w: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    flat = gen.choice(h * w, size=n, replace=False)
    return flat // w, flat % w


def _impulse_noise(images: Any, rate: float, rng: SeedLike, name: str, max_value: float | None,
                   min_value: float, pepper: bool) -> Any:
    """⌊rate·H·W⌋ locations per image; with ``pepper`` the first ⌊n/2⌋ go to ``min_value``."""
    rate = _check_rate(rate, name)
    arr, back = _to_numpy(images, name)
    gen = as_generator(rng)
    top = _max_value(arr, max_value)
    h, w = arr.shape[2:]
    n = _n_of(rate, h * w)
    k = n // 2 if pepper else 0
    for b in range(arr.shape[0]):
        if n:
            rows, cols = _pixel_choice(gen, h, w, n)
            arr[b][:, rows[:k], cols[:k]] = min_value
            arr[b][:, rows[k:], cols[k:]] = top
    return back(arr)


def salt_noise(images: Any, rate: float, rng: SeedLike = None, *, max_value: float | None = None) -> Any:
    """Salt noise: ⌊rate·H·W⌋ pixel locations (without replacement) set to ``max_value`` on all bands.

    images: (C, H, W) or (B, C, H, W). Returns a corrupted copy of the same type and shape.
    """
    return _impulse_noise(images, rate, rng, "salt_noise", max_value, 0.0, pepper=False)


def salt_and_pepper_noise(images: Any, rate: float, rng: SeedLike = None, *, max_value: float | None = None,
                          min_value: float = 0.0) -> Any:
    """Salt-and-pepper noise on all bands.

    ⌊rate·H·W⌋ locations; ⌊n/2⌋ of them set to ``min_value`` (pepper) and the other
    n - ⌊n/2⌋ to ``max_value`` (salt).

    images: (C, H, W) or (B, C, H, W). Returns a corrupted copy of the same type and shape.
    """
    return _impulse_noise(images, rate, rng, "salt_and_pepper_noise", max_value, min_value, pepper=True)


def speckle_noise(images: Any, rate: float, rng: SeedLike = None, *, max_value: float | None = None,
                  clip: bool = True) -> Any:
    """Multiplicative gamma speckle: x * g with g ~ Gamma(L, 1/L), L = 1/rate² looks.

    The factor has mean 1 and standard deviation ``rate`` (rate 1 = single-look intensity).
    One independent factor per pixel and band. With ``clip`` the result is clipped to
    [0, max_value]. NaN stays NaN. images: (C, H, W) or (B, C, H, W); returns a copy.
    """
    rate = _check_rate(rate, "speckle_noise")
    arr, back = _to_numpy(images, "speckle_noise")
    if rate == 0:
        return back(arr)
    gen = as_generator(rng)
    top = _max_value(arr, max_value)
    looks = 1.0 / rate**2
    for b in range(arr.shape[0]):
        factor = gen.gamma(looks, 1.0 / looks, size=arr.shape[1:])
        out = arr[b].astype(np.float64) * factor
        if clip:
            out = np.clip(out, 0.0, top)
        arr[b] = out.astype(arr.dtype) if not np.issubdtype(arr.dtype, np.integer) else np.rint(out).astype(arr.dtype)
    return back(arr)


def cloud_mask(shape: tuple[int, int], rate: float, rng: SeedLike = None, *, blob: int = 16) -> np.ndarray:
    """A boolean (H, W) mask with exactly ⌊rate·H·W⌋ True pixels forming smooth blobs.

    A random field on a coarse grid (one node every ``blob`` pixels) is bilinearly upsampled to
    (H, W) (plus a tiny pixel-level jitter that breaks ties); the ⌊rate·H·W⌋ highest pixels are
    the cloud.
    """
    rate = _check_rate(rate, "cloud_mask")
    gen = as_generator(rng)
    h, w = (int(shape[0]), int(shape[1]))
    if h < 1 or w < 1 or blob < 1:
        raise ConfigError(f"cloud_mask: shape and blob must be positive, got {shape}, blob={blob}")
    gh, gw = h // blob + 2, w // blob + 2
    coarse = gen.random((gh, gw))
    yy = np.linspace(0, gh - 1.000001, h)
    xx = np.linspace(0, gw - 1.000001, w)
    y0, x0 = np.floor(yy).astype(int), np.floor(xx).astype(int)
    fy, fx = (yy - y0)[:, None], (xx - x0)[None, :]
    field = (coarse[y0][:, x0] * (1 - fy) * (1 - fx) + coarse[y0 + 1][:, x0] * fy * (1 - fx)
             + coarse[y0][:, x0 + 1] * (1 - fy) * fx + coarse[y0 + 1][:, x0 + 1] * fy * fx)
    field = field + 1e-6 * gen.random((h, w))
    n = _n_of(rate, h * w)
    mask = np.zeros(h * w, dtype=bool)
    if n:
        mask[np.argsort(field, axis=None, kind="stable")[-n:]] = True
    return mask.reshape(h, w)


def cloud_noise(images: Any, rate: float, rng: SeedLike = None, *, fill: str | float = "max",
                max_value: float | None = None, blob: int = 16) -> Any:
    """Clouds / missing data: ⌊rate·H·W⌋ pixels in smooth blobs (:func:`cloud_mask`), all bands.

    ``fill="max"``: bright opaque cloud (``max_value``); ``fill="nan"``: missing data (NaN, float
    images only); a number: that value. images: (C, H, W) or (B, C, H, W); returns a copy.
    """
    rate = _check_rate(rate, "cloud_noise")
    arr, back = _to_numpy(images, "cloud_noise")
    if fill == "max":
        value = _max_value(arr, max_value)
    elif fill == "nan":
        if not np.issubdtype(arr.dtype, np.floating):
            raise ConfigError(f"cloud_noise: fill='nan' needs float images, got dtype {arr.dtype}")
        value = np.nan
    elif isinstance(fill, (int, float)):
        value = float(fill)
    else:
        raise ConfigError(f"cloud_noise: fill must be 'max', 'nan' or a number, got {fill!r}")
    gen = as_generator(rng)
    for b in range(arr.shape[0]):
        mask = cloud_mask(arr.shape[2:], rate, gen, blob=blob)
        arr[b][:, mask] = value
    return back(arr)


#: name -> corruption ``fn(images, rate, rng)``, the names :func:`corrupt` and
#: :func:`robustness_sweep` accept.
CORRUPTIONS: dict[str, Callable[..., Any]] = {
    "strip": strip_noise,
    "salt": salt_noise,
    "salt_and_pepper": salt_and_pepper_noise,
    "speckle": speckle_noise,
    "cloud": cloud_noise,
}


def corrupt(images: Any, kind: str, rate: float, rng: SeedLike = None, **options: Any) -> Any:
    """Apply the corruption named ``kind`` (a key of :data:`CORRUPTIONS`) at ``rate``."""
    try:
        fn = CORRUPTIONS[kind]
    except KeyError:
        raise ConfigError(f"corrupt: unknown corruption {kind!r}; choose one of {sorted(CORRUPTIONS)}") from None
    return fn(images, rate, rng, **options)


def _scene_sample(scene: Any, keys: Sequence[str], label_key: str) -> dict[str, np.ndarray]:
    """{key: (C, H, W), label_key: (H, W)} from a scene (xarray.Dataset) of the scene schema."""
    out: dict[str, np.ndarray] = {}
    for key in keys:
        var, _, date = key.rpartition("_")
        if var not in scene.data_vars or date not in ("t1", "t2"):
            raise ConfigError(f"robustness_sweep: scene {scene.attrs.get('site', '?')!r} cannot give {key!r}")
        da = scene[var].isel(time=0 if date == "t1" else -1)
        out[key] = np.asarray(da.transpose(da.dims[0], "y", "x").values, dtype=np.float32)
    if label_key not in scene.data_vars:
        raise ConfigError(f"robustness_sweep: scene {scene.attrs.get('site', '?')!r} has no {label_key!r}")
    out[label_key] = np.asarray(scene[label_key].values)
    return out


def robustness_sweep(predict_fn: Callable[[dict[str, Any]], Any], scenes: Iterable[Any],
                     corruptions: Sequence[str] | Mapping[str, Callable[..., Any]] = ("strip", "salt"),
                     rates: Sequence[float] = (0.0, 0.1, 0.5), *, keys: Sequence[str] = ("optical_t1", "optical_t2"),
                     label_key: str = "change", threshold: float = 0.5, seed: int = 0):
    """F1/IoU of ``predict_fn`` on corrupted test images, per corruption and rate.

    Args:
        predict_fn: ``predict_fn(sample) -> probability (H, W)`` (or (1, H, W)), where ``sample``
            is ``{key: (C, H, W) array for each of keys}``.
        scenes: test samples: dicts ``{key: (C, H, W), label_key: (H, W)}`` (arrays or tensors)
            or scenes (``xarray.Dataset``; ``optical_t1`` = first date, ``optical_t2`` = last).
        corruptions: names from :data:`CORRUPTIONS`, or ``{name: fn(images, rate, rng)}``.
        rates: corruption rates; 0 gives the clean reference (computed once, shared).
        keys: the inputs that are corrupted (each date independently) and passed on.
        threshold: probability threshold of the change map.
        seed: every (corruption, rate) draws from ``default_rng([seed, i, j])`` (i, j: positions
            in ``corruptions`` and ``rates``), so a row does not depend on which others are run.

    Returns:
        A pandas DataFrame with one row per (corruption, rate): ``corruption``, ``rate``, ``tp``,
        ``fp``, ``fn``, ``tn``, ``precision``, ``recall``, ``f1``, ``iou`` (pooled over all
        scenes), ``f1_drop`` and ``iou_drop`` = (clean - corrupted) / clean.
    """
    import pandas as pd

    from .metrics import scores_from_counts

    fns = _sweep_corruptions(corruptions)
    rates = [_check_rate(r, "robustness_sweep") for r in rates]
    if not fns or not rates:
        raise ConfigError("robustness_sweep: give at least one corruption and one rate")
    samples = _sweep_samples(scenes, keys, label_key)

    def counts(fn, rate, gen) -> tuple[int, int, int, int]:
        corrupted = ({**{k: (s[k] if fn is None else fn(s[k], rate, gen)) for k in keys}, label_key: s[label_key]}
                     for s in samples)   # lazily: one corrupted sample in memory at a time
        return _pooled_counts(predict_fn, corrupted, label_key, threshold, "robustness_sweep")

    clean = counts(None, 0.0, None)
    rows = []
    for i, (name, fn) in enumerate(fns.items()):
        for j, rate in enumerate(rates):
            c = clean if rate == 0 else counts(fn, rate, np.random.default_rng([seed, i, j]))
            rows.append({"corruption": name, "rate": rate, **dict(zip(("tp", "fp", "fn", "tn"), c)),
                         **{k: v for k, v in scores_from_counts(*c).items()
                            if k in ("precision", "recall", "f1", "iou")}})
    df = pd.DataFrame(rows)
    ref = scores_from_counts(*clean)
    for metric in ("f1", "iou"):
        base = ref[metric]
        df[f"{metric}_drop"] = (base - df[metric]) / base if base and not math.isnan(base) else math.nan
    return df


def _sweep_corruptions(corruptions: Sequence[str] | Mapping[str, Callable[..., Any]]) -> dict[str, Callable]:
    """``{name: fn(images, rate, rng)}`` of :func:`robustness_sweep`'s ``corruptions``."""
    if isinstance(corruptions, Mapping):
        return dict(corruptions)
    unknown = [name for name in corruptions if name not in CORRUPTIONS]
    if unknown:
        raise ConfigError(f"robustness_sweep: unknown corruption {unknown[0]!r}; choose from {sorted(CORRUPTIONS)}")
    return {name: CORRUPTIONS[name] for name in corruptions}


def _sweep_samples(scenes: Iterable[Any], keys: Sequence[str], label_key: str) -> list[dict[str, np.ndarray]]:
    """The test samples of :func:`robustness_sweep` as numpy dicts ``{key: (C, H, W), label_key: (H, W)}``."""
    samples = []
    for n, item in enumerate(scenes):
        if hasattr(item, "data_vars"):
            samples.append(_scene_sample(item, keys, label_key))
            continue
        if not isinstance(item, Mapping):
            raise ConfigError(f"robustness_sweep: item {n} is a {type(item).__name__}; expected a dict or a scene")
        missing = [k for k in (*keys, label_key) if k not in item]
        if missing:
            raise ConfigError(f"robustness_sweep: item {n} lacks {missing} (has {sorted(item)})")
        samples.append({k: (item[k].detach().cpu().numpy() if hasattr(item[k], "detach") else np.asarray(item[k]))
                        for k in (*keys, label_key)})
    if not samples:
        raise ConfigError("robustness_sweep: no test samples")
    return samples


# ----------------------------------------------------------------------------- Sentinel corruptions
def sar_speckle(images: Any, looks: float, rng: SeedLike = None, *,
                db_range: tuple[float, float] | None = (-25.0, 0.0)) -> Any:
    """Extra multiplicative speckle with ``looks`` equivalent looks on SAR backscatter.

    Speckle multiplies the linear intensity by g ~ Gamma(L, 1/L) (mean 1, variance 1/L); in dB
    that is an additive ``10·log10(g)``. One independent draw per pixel and polarisation.

    Args:
        images: (C, H, W) or (B, C, H, W) SAR images; in dB when ``db_range`` is None, else dB
            scaled to [0, 1] with ``db_range`` (the kit's model input; the result is clipped to
            [0, 1] like the torch layer does). NaN stays NaN.
        looks: equivalent number of looks L > 0 (1 = single look, very noisy; ``math.inf`` =
            no extra speckle, an exact copy).
        rng: seed or Generator.
        db_range: (low, high) dB of the [0, 1] scaling, or None for images in dB.

    Returns:
        A corrupted copy of the same type and shape.
    """
    looks = float(looks)
    if not looks > 0 or math.isnan(looks):
        raise ConfigError(f"sar_speckle: looks must be > 0 (math.inf for none), got {looks!r}")
    arr, back = _to_numpy(images, "sar_speckle")
    if not np.issubdtype(arr.dtype, np.floating):
        raise ConfigError(f"sar_speckle: images must be float (dB or scaled dB), got dtype {arr.dtype}")
    if math.isinf(looks):
        return back(arr)
    gen = as_generator(rng)
    span = 1.0 if db_range is None else float(db_range[1] - db_range[0])
    if span <= 0:
        raise ConfigError(f"sar_speckle: db_range must be (low, high) with low < high, got {db_range!r}")
    for b in range(arr.shape[0]):
        gain_db = 10.0 * np.log10(gen.gamma(looks, 1.0 / looks, size=arr.shape[1:]))
        out = arr[b].astype(np.float64) + gain_db / span
        arr[b] = np.clip(out, 0.0, 1.0) if db_range is not None else out
    return back(arr)


def haze_noise(images: Any, rate: float, rng: SeedLike = None, *, airlight: float = 0.3,
               blob: int = 32, band_weights: Sequence[float] | None = None) -> Any:
    """Thin haze: ``x' = (1 - t)·x + t·airlight`` with a smooth transmission loss t.

    t varies smoothly over the image between ``rate/2`` and ``rate`` (a bilinearly upsampled
    random field, one node every ``blob`` pixels), the same for all bands, times
    ``band_weights[c]`` when given (e.g. more haze in the blue than in the near infrared).

    Args:
        images: (C, H, W) or (B, C, H, W) reflectance (0..1); NaN stays NaN.
        rate: the largest haze opacity, in [0, 1] (0: an exact copy; 1: pure airlight at the
            thickest point).
        rng: seed or Generator.
        airlight: reflectance of the haze (0..1).
        blob: spatial scale of the haze field (pixels).
        band_weights: C factors in [0, 1] on t, or None (all 1).

    Returns:
        A corrupted copy of the same type and shape.
    """
    rate = _check_rate(rate, "haze_noise")
    arr, back = _to_numpy(images, "haze_noise")
    if rate == 0:
        return back(arr)
    weights = np.ones(arr.shape[1]) if band_weights is None else np.asarray(band_weights, dtype=np.float64)
    if weights.shape != (arr.shape[1],) or np.any(weights < 0) or np.any(weights > 1):
        raise ConfigError(f"haze_noise: band_weights must be {arr.shape[1]} values in [0, 1], got {band_weights!r}")
    gen = as_generator(rng)
    h, w = arr.shape[2:]
    for b in range(arr.shape[0]):
        field = _smooth_field(gen, h, w, blob)
        t = rate * (0.5 + 0.5 * field)[None] * weights[:, None, None]
        arr[b] = ((1.0 - t) * arr[b] + t * airlight).astype(arr.dtype)
    return back(arr)


def _smooth_field(gen: np.random.Generator, h: int, w: int, blob: int) -> np.ndarray:
    """A smooth (H, W) random field rescaled to [0, 1] (bilinear upsampling of a coarse grid)."""
    from scipy.ndimage import zoom

    coarse = gen.random((h // blob + 2, w // blob + 2))
    field = zoom(coarse, (h / coarse.shape[0], w / coarse.shape[1]), order=1, grid_mode=True,
                 mode="nearest")[:h, :w]
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / (hi - lo) if hi > lo else np.zeros((h, w))


def shift_image(images: Any, dy: int, dx: int) -> Any:
    """Translate images by (dy, dx) whole pixels (down / right positive), replicating the edges.

    images: (C, H, W) or (B, C, H, W). Returns a shifted copy of the same type and shape;
    (0, 0) is an exact copy.
    """
    dy, dx = int(dy), int(dx)
    arr, back = _to_numpy(images, "shift_image")
    h, w = arr.shape[2:]
    if abs(dy) >= h or abs(dx) >= w:
        raise ConfigError(f"shift_image: shift ({dy}, {dx}) px must be smaller than the image ({h}x{w})")
    rows = np.clip(np.arange(h) - dy, 0, h - 1)
    cols = np.clip(np.arange(w) - dx, 0, w - 1)
    return back(np.ascontiguousarray(arr[:, :, rows][:, :, :, cols]))


def misregistration(images: Any, pixels: float, rng: SeedLike = None) -> Any:
    """Shift images by ``pixels`` in a random direction (rounded to whole pixels per axis).

    The direction angle is uniform in [0, 2π); the shift is ``(round(p·sin a), round(p·cos a))``,
    one draw per image of a batch. images: (C, H, W) or (B, C, H, W); returns a copy.
    """
    pixels = float(pixels)
    if pixels < 0 or math.isnan(pixels):
        raise ConfigError(f"misregistration: pixels must be >= 0, got {pixels!r}")
    arr, back = _to_numpy(images, "misregistration")
    gen = as_generator(rng)
    for b in range(arr.shape[0]):
        angle = gen.uniform(0.0, 2.0 * math.pi)
        arr[b] = shift_image(arr[b], round(pixels * math.sin(angle)), round(pixels * math.cos(angle)))
    return back(arr)


def drop_modality(sample: Mapping[str, Any], modality: str, fill: float = 0.0) -> dict[str, Any]:
    """A copy of ``sample`` whose ``<modality>_t1``/``_t2`` inputs are replaced by ``fill``.

    This is what a pipeline sees when a sensor has no acquisition and the gap is filled with a
    constant (0 = reflectance 0 / the bottom of the SAR dB range, the torch layer's NaN fill).

    Args:
        sample: ``{key: (C, H, W) array or tensor}`` (labels are passed through).
        modality: ``"sar"`` or ``"optical"``.
        fill: the constant.

    Returns:
        A new dict; raises ConfigError when the sample has no input of that modality.
    """
    if modality not in ("sar", "optical"):
        raise ConfigError(f"drop_modality: modality must be 'sar' or 'optical', got {modality!r}")
    keys = [k for k in sample if k in (f"{modality}_t1", f"{modality}_t2")]
    if not keys:
        raise ConfigError(f"drop_modality: the sample has no {modality} input (keys {sorted(sample)})")
    out = dict(sample)
    for k in keys:
        arr, back = _to_numpy(sample[k], "drop_modality")
        arr[...] = fill
        out[k] = back(arr)
    return out


# ----------------------------------------------------------------------------- sample level
def _on_keys(fn: Callable[..., Any], keys: Sequence[str]) -> Callable[..., dict[str, Any]]:
    """A sample corruption that applies ``fn(image, level, gen)`` to each of ``keys`` present."""
    def apply(sample: Mapping[str, Any], level: float, gen: np.random.Generator) -> dict[str, Any]:
        out = dict(sample)
        for k in keys:
            if k in out:
                out[k] = fn(out[k], level, gen)
        return out
    return apply


def _missing(sample: Mapping[str, Any], level: Any, gen: np.random.Generator) -> dict[str, Any]:
    """level: ``"none"``, ``"sar"`` or ``"optical"`` (the absent sensor); no-op when the sample lacks it."""
    if level == "none" or not any(k.startswith(f"{level}_") for k in sample):
        return dict(sample)
    return drop_modality(sample, str(level))


_OPTICAL = ("optical_t1", "optical_t2")
_SAR = ("sar_t1", "sar_t2")

#: name -> ``fn(sample, level, gen) -> corrupted sample``; the level of each:
#: ``strip``/``salt``/``cloud``/``haze``: rate on both optical dates; ``speckle``: looks on both
#: SAR dates; ``misregistration``: pixels, on every input of the second date; ``missing``:
#: ``"none"``, ``"sar"`` or ``"optical"``.
SAMPLE_CORRUPTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "strip": _on_keys(strip_noise, _OPTICAL),
    "salt": _on_keys(salt_noise, _OPTICAL),
    "cloud": _on_keys(cloud_noise, _OPTICAL),
    "haze": _on_keys(haze_noise, _OPTICAL),
    "speckle": _on_keys(sar_speckle, _SAR),
    "misregistration": _on_keys(misregistration, ("optical_t2", "sar_t2")),
    "missing": _missing,
}


def corrupt_sample(sample: Mapping[str, Any], kind: str, level: Any, rng: SeedLike = None) -> dict[str, Any]:
    """Apply the sample corruption ``kind`` (a key of :data:`SAMPLE_CORRUPTIONS`) at ``level``."""
    try:
        fn = SAMPLE_CORRUPTIONS[kind]
    except KeyError:
        raise ConfigError(f"corrupt_sample: unknown corruption {kind!r}; choose one of "
                          f"{sorted(SAMPLE_CORRUPTIONS)}") from None
    return fn(sample, level, as_generator(rng))


def _pooled_counts(predict_fn: Callable[[dict[str, Any]], Any], samples: Iterable[Mapping[str, Any]],
                   label_key: str, threshold: float, caller: str = "robustness_table") -> tuple[int, int, int, int]:
    """(tp, fp, fn, tn) pooled over ``samples`` of ``predict_fn``'s map at ``threshold`` (label > 0.5)."""
    tp = fp = fn_ = tn = 0
    for s in samples:
        prob = np.asarray(predict_fn({k: v for k, v in s.items() if k != label_key}), dtype=np.float64).squeeze()
        truth = np.asarray(s[label_key]).squeeze() > 0.5
        if prob.shape != truth.shape:
            raise ConfigError(f"{caller}: prediction shape {prob.shape} != label shape {truth.shape}")
        pred = prob > threshold
        tp += int(np.sum(pred & truth))
        fp += int(np.sum(pred & ~truth))
        fn_ += int(np.sum(~pred & truth))
        tn += int(np.sum(~pred & ~truth))
    return tp, fp, fn_, tn


def robustness_table(predict_fns: Mapping[str, Callable[[dict[str, Any]], Any]],
                     samples: Sequence[Mapping[str, Any]], plan: Sequence[tuple[str, Any]], *,
                     label_key: str = "change", threshold: float = 0.5, seed: int = 0):
    """Scores of several predictors on corrupted copies of the same test samples.

    Every (corruption, level) of ``plan`` corrupts each sample once, with the generator
    ``default_rng([seed, i, n])`` (i: position in ``plan``, n: sample index), and every model
    sees the *same* corrupted inputs; scores pool the pixels of all samples.

    Args:
        predict_fns: model name -> ``fn(sample) -> probability (H, W)``; the sample holds the
            input keys (``optical_t1`` ... as (C, H, W)) without the label.
        samples: dicts of inputs (C, H, W) and ``label_key`` (H, W).
        plan: ``(corruption, level)`` pairs, corruption from :data:`SAMPLE_CORRUPTIONS` or
            ``"clean"`` (level ignored).
        label_key, threshold: the label and the probability threshold.
        seed: base seed of the corruptions.

    Returns:
        A pandas DataFrame, one row per (model, corruption, level): ``model``, ``corruption``,
        ``level``, ``tp``, ``fp``, ``fn``, ``tn``, ``precision``, ``recall``, ``f1``, ``iou``,
        ``kappa``.
    """
    import pandas as pd

    from .metrics import scores_from_counts

    if not predict_fns or not samples or not plan:
        raise ConfigError("robustness_table: give at least one model, one sample and one (corruption, level)")
    for n, s in enumerate(samples):
        if label_key not in s:
            raise ConfigError(f"robustness_table: sample {n} has no {label_key!r} (keys {sorted(s)})")
    rows = []
    for i, (kind, level) in enumerate(plan):
        if kind != "clean" and kind not in SAMPLE_CORRUPTIONS:
            raise ConfigError(f"robustness_table: unknown corruption {kind!r}; choose 'clean' or one of "
                              f"{sorted(SAMPLE_CORRUPTIONS)}")
        corrupted = samples if kind == "clean" else [
            corrupt_sample(s, kind, level, np.random.default_rng([seed, i, n])) for n, s in enumerate(samples)]
        for name, fn in predict_fns.items():
            counts = _pooled_counts(fn, corrupted, label_key, threshold)
            scores = scores_from_counts(*counts, undefined=0.0)
            rows.append({"model": name, "corruption": kind, "level": level,
                         **dict(zip(("tp", "fp", "fn", "tn"), counts)),
                         **{k: scores[k] for k in ("precision", "recall", "f1", "iou", "kappa")}})
    return pd.DataFrame(rows)
