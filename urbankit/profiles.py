"""Execution profiles, device selection and seeding, defined once for the whole kit.

A *profile* says how big a run is: which data it reads, on which device, for how many
epochs, with which patch size, batch size, model width and seed. Chapters receive the
profile name from papermill (``profile = "quick"`` in their ``parameters`` cell) and call
:func:`get_profile`, so no chapter carries its own table of sizes.

- ``quick``: CPU, embedded ``data_samples/``, reduced model widths, minutes per chapter.
  The committed notebook outputs come from this profile.
- ``full``: GPU, the real datasets (downloaded when missing), the papers' sizes and recipes.
- ``real``: a CPU-sized run on real data found under ``data_root``
  (e.g. ``../shared/data/real``).
"""
from __future__ import annotations

import dataclasses
import os
import random
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .errors import ConfigError

DataSource = Literal["samples", "real", "download"]
DeviceName = Literal["auto", "cpu", "cuda", "mps"]


@dataclass(frozen=True)
class Profile:
    """How large a run is. Immutable; use :meth:`replace` to derive a variant.

    Attributes:
        name: profile name (``quick``, ``full``, ``real``).
        data_source: ``samples`` (embedded ``data_samples/``), ``real`` (files under
            ``data_root``) or ``download`` (real datasets, fetched when missing).
        data_root: folder of the real data, or None for the default location.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``; resolve with :meth:`torch_device`.
        epochs: training epochs per model.
        steps_per_epoch: optimiser steps per epoch (None: one pass over the sampler).
        patch_size: training patch side in pixels.
        batch_size: training batch size.
        width: model width multiplier (1.0 = the paper's size; 0.25 = a quarter of the
            channels), applied through each model's topology knob.
        seed: random seed for everything (see :func:`seed_everything`).
        n_seeds: number of seeds for mean +/- std tables.
        num_workers: DataLoader workers.
        amp: use mixed precision (bf16/fp16 autocast) on CUDA.
        extra: free-form per-chapter overrides (read-only mapping).
    """

    name: str
    data_source: DataSource
    data_root: str | None = None
    device: DeviceName = "auto"
    epochs: int = 2
    steps_per_epoch: int | None = None
    patch_size: int = 64
    batch_size: int = 8
    width: float = 0.25
    seed: int = 0
    n_seeds: int = 1
    num_workers: int = 0
    amp: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.data_source not in ("samples", "real", "download"):
            raise ConfigError(
                f"profile {self.name!r}: data_source must be 'samples', 'real' or 'download', "
                f"got {self.data_source!r}"
            )
        if self.device not in ("auto", "cpu", "cuda", "mps"):
            raise ConfigError(
                f"profile {self.name!r}: device must be auto, cpu, cuda or mps, got {self.device!r}"
            )
        for key in ("epochs", "patch_size", "batch_size", "n_seeds"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"profile {self.name!r}: {key} must be a positive int, got {value!r}")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ConfigError(f"profile {self.name!r}: steps_per_epoch must be >= 1 or None")
        if not (0 < float(self.width) <= 4):
            raise ConfigError(f"profile {self.name!r}: width must be in (0, 4], got {self.width!r}")
        if self.num_workers < 0:
            raise ConfigError(f"profile {self.name!r}: num_workers must be >= 0")

    def replace(self, **changes: Any) -> Profile:
        """Return a copy with some fields changed; None values are ignored.

        Chapters pass their papermill parameters straight through:
        ``get_profile(profile).replace(epochs=epochs, seed=seed)`` keeps the profile's value
        wherever the chapter's parameter is None.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"profile {self.name!r}: unknown field(s) {unknown}; known: {sorted(known)}")
        changes = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **changes)

    def torch_device(self):
        """The resolved ``torch.device`` for this profile (see :func:`resolve_device`)."""
        return resolve_device(self.device)

    def describe(self) -> str:
        """One line saying which data and sizes produced a result (for table captions)."""
        data = {"samples": "embedded synthetic samples", "real": f"real data ({self.data_root or 'data_root'})",
                "download": "the real datasets"}[self.data_source]
        return (f"profile '{self.name}': {data}; {self.epochs} epoch(s), patch {self.patch_size} px, "
                f"batch {self.batch_size}, width x{self.width:g}, seed {self.seed}")

    def as_dict(self) -> dict[str, Any]:
        """The profile's fields as a plain dict."""
        return dataclasses.asdict(self)


PROFILES: dict[str, Profile] = {
    "quick": Profile(
        name="quick", data_source="samples", device="cpu", epochs=3, patch_size=64,
        batch_size=8, width=0.25, seed=0, n_seeds=1, num_workers=0, amp=False,
    ),
    "full": Profile(
        name="full", data_source="download", device="auto", epochs=100, patch_size=256,
        batch_size=16, width=1.0, seed=0, n_seeds=5, num_workers=4, amp=True,
    ),
    # CPU-sized: one seed of chapter 04 on six real OSCD cities takes ~10-20 min on 2 cores.
    "real": Profile(
        name="real", data_source="real", device="auto", epochs=10, patch_size=96,
        batch_size=16, width=0.25, seed=0, n_seeds=1, num_workers=0, amp=True,
    ),
}


def get_profile(name: str = "quick", **overrides: Any) -> Profile:
    """Return the named profile, with optional field overrides (None values ignored).

    >>> get_profile("quick").patch_size
    64
    """
    try:
        base = PROFILES[name]
    except KeyError:
        raise ConfigError(f"unknown profile {name!r}; choose one of {sorted(PROFILES)}") from None
    return base.replace(**overrides)


def resolve_device(device: Any = "auto"):
    """Turn ``auto|cpu|cuda|mps`` into a ``torch.device``.

    ``auto`` (also None) picks CUDA, then Apple MPS, then CPU; a ``torch.device`` is returned
    as it is. Asking for ``cuda`` or ``mps`` where it is not available raises ConfigError
    instead of failing later inside torch.

    Args:
        device: ``"auto"``, ``"cpu"``, ``"cuda"``, ``"mps"``, None or a ``torch.device``.

    Returns:
        The ``torch.device`` to run on.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' was requested but torch sees no CUDA GPU; use device='auto' or 'cpu'")
    if device == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError("device='mps' was requested but Apple MPS is not available")
    if device not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device must be auto, cpu, cuda or mps, got {device!r}")
    return torch.device(device)


def amp_settings(amp: bool | str, device) -> tuple[bool, Any, bool]:
    """How mixed precision runs on ``device``: (enabled, dtype, needs a GradScaler).

    On CUDA ``True`` picks bfloat16 where the GPU supports it, else float16 with a GradScaler;
    ``"bf16"``/``"fp16"`` force one. On CPU only an explicit ``"bf16"`` turns autocast on
    (bfloat16, no scaler: measured 1.5-2.15x faster for the U-Net family train step on 2 cores,
    outputs within 2.3e-3); ``True`` stays off there, so a profile asking for AMP on a GPU does
    not change CPU results. False, MPS, or ``"fp16"`` on CPU disable it.

    Args:
        amp: True, False, ``"bf16"`` or ``"fp16"``.
        device: the ``torch.device`` the model runs on.

    Returns:
        ``(enabled, torch dtype or None, use a GradScaler)``.

    Raises:
        ConfigError: ``amp`` is none of the accepted values.
    """
    import torch

    if amp not in (True, False, None, "bf16", "fp16"):
        raise ConfigError(f"amp must be True, False, 'bf16' or 'fp16', got {amp!r}")
    if amp and device.type == "cpu":
        return (True, torch.bfloat16, False) if amp == "bf16" else (False, None, False)
    if not amp or device.type != "cuda":
        return False, None, False
    if amp == "fp16":
        return True, torch.float16, True
    if amp == "bf16" or torch.cuda.is_bf16_supported():
        return True, torch.bfloat16, False
    return True, torch.float16, True


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python's ``random``, numpy and torch (CPU and CUDA).

    With ``deterministic=True`` also asks torch for deterministic algorithms
    (``warn_only`` so an op without a deterministic kernel warns instead of failing),
    disables cuDNN benchmarking and sets ``CUBLAS_WORKSPACE_CONFIG`` for CUDA.
    """
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(f"seed must be a non-negative int, got {seed!r}")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    os.environ["PYTHONHASHSEED"] = str(seed)
    try:
        import torch
    except ImportError:  # numpy-only use of the kit
        return
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        if hasattr(torch.backends, "cudnn"):
            torch.backends.cudnn.benchmark = False
            torch.backends.cudnn.deterministic = True


# ---- CPU kernels that give the same numbers on every x86-64 machine ----
#: Environment variables that make torch (ATen, oneDNN, MKL) and numpy's OpenBLAS take the same
#: code paths on every x86-64 CPU with AVX2. Without them a machine with AVX-512 runs other
#: kernels than one without, their float32 sums differ in the last bit, and after a few hundred
#: optimiser steps a trained network's F1 differs in the second decimal (measured here: the
#: committed outputs of six chapters did not reproduce on an AVX2-only CPU). Read by every
#: process started after they are set; see :func:`cpu_kernel_pins`.
CPU_KERNEL_PINS: dict[str, str] = {
    "ATEN_CPU_CAPABILITY": "avx2",      # torch's own vectorised kernels: the AVX2 build, not AVX-512
    "ONEDNN_MAX_CPU_ISA": "AVX2",       # oneDNN (torch's CPU convolutions): at most AVX2 code
    "MKL_CBWR": "COMPATIBLE",           # MKL (torch's matrix products): the code path MKL gives every x86 CPU
    "OPENBLAS_CORETYPE": "Haswell",     # numpy's and scipy's OpenBLAS: the AVX2 kernels
}
#: every variable a pin may set (numpy's names its dispatch targets, which depend on the release)
CPU_KERNEL_PIN_NAMES: tuple[str, ...] = (*CPU_KERNEL_PINS, "NPY_DISABLE_CPU_FEATURES")
#: numpy dispatch targets above AVX2 (numpy 1.x names and numpy >= 2.3 group names)
_NUMPY_ABOVE_AVX2 = ("AVX512", "X86_V4", "AVX10", "AMX")


def _numpy_umath():
    """The numpy module that holds the CPU feature tables (``numpy._core`` since numpy 2)."""
    try:
        from numpy._core import _multiarray_umath
    except ImportError:  # numpy 1.x
        from numpy.core import _multiarray_umath
    return _multiarray_umath


def _numpy_dispatch_above_avx2() -> list[str]:
    """The numpy dispatch targets above AVX2 (the names ``NPY_DISABLE_CPU_FEATURES`` may hold)."""
    dispatched = getattr(_numpy_umath(), "__cpu_dispatch__", [])
    return [name for name in dispatched if name.startswith(_NUMPY_ABOVE_AVX2)]


def _has_avx2() -> bool:
    """Whether this CPU runs AVX2 and FMA code (x86-64 only; the pins would crash a CPU without)."""
    import platform

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return False
    features = getattr(_numpy_umath(), "__cpu_features__", {})
    return bool(features.get("AVX2") and features.get("FMA3"))


def cpu_kernel_pins() -> dict[str, str]:
    """The environment variables that pin the CPU kernels, for this machine.

    :data:`CPU_KERNEL_PINS` plus ``NPY_DISABLE_CPU_FEATURES`` naming numpy's dispatch targets
    above AVX2 (the names depend on the numpy release). Empty on a CPU that is not x86-64 with
    AVX2 (an ARM laptop, an old x86): no pin applies there, and asking torch for AVX2 kernels on
    a CPU without them would crash it.

    The book runner starts the ``quick`` profile's kernels with these (the committed outputs),
    and the tests start nbval's kernels with them, so a re-run on another CPU compares equal.
    """
    if not _has_avx2():
        return {}
    pins = dict(CPU_KERNEL_PINS)
    above = _numpy_dispatch_above_avx2()
    if above:
        pins["NPY_DISABLE_CPU_FEATURES"] = " ".join(above)
    return pins


def pin_cpu_kernels(environ: dict | None = None) -> dict[str, tuple[str, str]]:
    """Set :func:`cpu_kernel_pins` in ``environ`` (default ``os.environ``) for processes started later.

    A variable already set is kept: an explicit setting wins over the pin. The running process
    is not changed (torch and numpy read these when they load).

    Args:
        environ: the environment to change in place (``os.environ`` or a kernel's env dict).

    Returns:
        ``{name: (kept value, pinned value)}`` for every variable whose existing value differs
        from the pin (empty when all pins are in effect), so a caller can say that outputs may
        then differ from the committed ones.
    """
    environ = os.environ if environ is None else environ
    differing = {}
    for name, value in cpu_kernel_pins().items():
        kept = environ.setdefault(name, value)
        if kept != value:
            differing[name] = (kept, value)
    return differing
