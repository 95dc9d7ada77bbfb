"""Data-parallel training under ``torchrun``: DistributedDataParallel with a distributed sampler.

:func:`urbankit.train.fit` calls :func:`distribute` on every run. In a plain process it changes
nothing. Started by ``torchrun --nproc_per_node=N script.py`` (which sets ``WORLD_SIZE``,
``RANK``, ``LOCAL_RANK``) it joins the process group (``gloo`` on CPU, ``nccl`` on CUDA, one GPU
per process by ``LOCAL_RANK``), wraps the model in ``DistributedDataParallel`` and gives each
process its share of every batch:

- a **DataLoader** keeps its own sampler, so the *global* order of the samples is the one a
  single process draws (the same seeded generator on every process); :class:`DistributedBatchSampler`
  then hands process ``r`` the ``r``-th contiguous slice of each global batch. (torch's
  ``DistributedSampler`` interleaves a permutation of its own instead: the run would then equal
  a single process only with a one-replica ``DistributedSampler``, not the loader you wrote.)
- a **list of batch dicts** (tests, in-memory data) is sliced the same way.

The global batch is the loader's ``batch_size``; it must divide by the number of processes
(every batch, the last one included: use ``drop_last=True`` otherwise). DDP averages the
gradients over the processes, so for a loss that is a *mean over samples* (BCE, cross-entropy)
one step equals the single-process step on the global batch, and so do the weights after
training (to float rounding). A loss that is a ratio over the whole batch (power Jaccard with
``reduction="batch"``) is computed per process, as in any DDP training: close, not equal.
BatchNorm statistics are per process on CPU (``SyncBatchNorm`` needs CUDA); on CUDA the model's
BatchNorm layers are converted to ``SyncBatchNorm``, so they see the global batch.

Only process 0 prints, shows progress and writes checkpoints; every process validates on the
whole validation loader (same numbers everywhere, so early stopping agrees), and the training
loss of an epoch is averaged over the processes.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from .errors import ConfigError

__all__ = ["DistributedBatchSampler", "DistributedRun", "distribute", "init_from_env", "world"]


def world() -> tuple[int, int]:
    """(rank, world size) of the initialised process group, or (0, 1) without one."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> tuple[int, int]:
    """Join the process group that ``torchrun`` describes in the environment (if any).

    Args:
        device: the device the model trains on: ``gloo`` for CPU, ``nccl`` for CUDA (and then
            this process's GPU is ``cuda:LOCAL_RANK``).

    Returns:
        (rank, world size); (0, 1) when not started by torchrun with more than one process.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return world()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1
    if not dist.is_available():
        raise ConfigError("WORLD_SIZE > 1 but this torch build has no torch.distributed")
    if device.type == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return world()


def _slice(n: int, rank: int, world_size: int, what: str) -> slice:
    if n % world_size:
        raise ConfigError(f"{what}: a batch of {n} samples does not split over {world_size} processes; the "
                          f"global batch must be a multiple of the number of processes (use drop_last=True "
                          f"for a short last batch)")
    k = n // world_size
    return slice(rank * k, (rank + 1) * k)


class DistributedBatchSampler:
    """Process ``rank``'s contiguous slice of each global batch of another batch sampler.

    Every process iterates the same ``batch_sampler`` (same seeded generator, so the same global
    batches) and keeps its ``1 / world_size`` share. ``set_epoch`` is passed on.

    Args:
        batch_sampler: the single-process batch sampler (e.g. a DataLoader's ``batch_sampler``).
        rank, world_size: this process and the number of processes.
    """

    def __init__(self, batch_sampler, rank: int, world_size: int):
        self.batch_sampler, self.rank, self.world_size = batch_sampler, rank, world_size

    def __iter__(self) -> Iterator[list[int]]:
        """The rank's indices of each global batch; a batch that does not split raises ConfigError."""
        for batch in self.batch_sampler:
            yield list(batch)[_slice(len(batch), self.rank, self.world_size, "DistributedBatchSampler")]

    def __len__(self) -> int:
        """Number of batches (that of the wrapped sampler)."""
        return len(self.batch_sampler)

    def set_epoch(self, epoch: int) -> None:
        """Pass ``set_epoch`` on to the wrapped batch sampler and its sampler."""
        for obj in (self.batch_sampler, getattr(self.batch_sampler, "sampler", None)):
            if callable(getattr(obj, "set_epoch", None)):
                obj.set_epoch(epoch)


def _check_last_batch(loader, world_size: int) -> None:
    """Refuse up front a DataLoader whose last batch will not split over the processes."""
    try:
        n = len(loader.dataset)
    except TypeError:
        return
    size = loader.batch_size
    if size is None:
        return
    _slice(size, 0, world_size, "fit under torchrun: the loader's batch_size")
    last = n % size
    if last and not loader.drop_last:
        _slice(last, 0, world_size, f"fit under torchrun: the last batch ({n} samples, batch_size {size})")


def _shard_dataloader(loader, rank: int, world_size: int):
    from torch.utils.data import DataLoader, DistributedSampler

    if isinstance(loader.sampler, DistributedSampler):
        return loader  # already one process's share
    if loader.batch_sampler is None:
        raise ConfigError("fit under torchrun needs a DataLoader with a batch_size (batch_sampler); "
                          "this one has batch_size=None")
    _check_last_batch(loader, world_size)
    extra = {"prefetch_factor": loader.prefetch_factor, "persistent_workers": loader.persistent_workers} \
        if loader.num_workers > 0 else {}
    return DataLoader(loader.dataset, batch_sampler=DistributedBatchSampler(loader.batch_sampler, rank, world_size),
                      num_workers=loader.num_workers, collate_fn=loader.collate_fn, pin_memory=loader.pin_memory,
                      worker_init_fn=loader.worker_init_fn, generator=loader.generator, **extra)


def _shard_batch(batch: Mapping[str, Any], rank: int, world_size: int) -> dict[str, Any]:
    sizes = {len(v) for v in batch.values() if torch.is_tensor(v) and v.dim() > 0}
    if len(sizes) != 1:
        raise ConfigError(f"fit under torchrun: the batch's tensors disagree on the batch size ({sorted(sizes)})")
    s = _slice(sizes.pop(), rank, world_size, "fit under torchrun")
    return {k: v[s] if (torch.is_tensor(v) and v.dim() > 0) or isinstance(v, (list, tuple)) else v
            for k, v in batch.items()}


def _shard_loader(loader, rank: int, world_size: int):
    from torch.utils.data import DataLoader

    if isinstance(loader, DataLoader):
        return _shard_dataloader(loader, rank, world_size)
    if isinstance(loader, Sequence):
        return [_shard_batch(b, rank, world_size) for b in loader]
    raise ConfigError(f"fit under torchrun: cannot share a {type(loader).__name__} between processes; pass a "
                      "torch DataLoader (or a list of batch dicts)")


class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DistributedDataParallel that answers attribute look-ups (``output_keys``...) from the model."""

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":   # not set yet (inside DDP's __init__)
                raise
            return getattr(self.module, name)


@dataclass
class DistributedRun:
    """What :func:`distribute` decided: the model and loader to train with, and who this process is."""

    model: torch.nn.Module
    loader: Any
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Whether this process prints and writes checkpoints (rank 0)."""
        return self.rank == 0

    def average(self, record: dict[str, Any], keys: Sequence[str]) -> dict[str, Any]:
        """``record`` with the float values of ``keys`` averaged over the processes."""
        if self.world_size == 1:
            return record
        import torch.distributed as dist

        present = [k for k in keys if isinstance(record.get(k), float)]
        values = torch.tensor([record[k] for k in present], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            values = values.cuda()
        dist.all_reduce(values)
        return record | {k: float(v) / self.world_size for k, v in zip(present, values.cpu())}


def distribute(model: torch.nn.Module, train_loader, device: torch.device) -> DistributedRun:
    """The model and loader one process trains with (unchanged outside torchrun).

    Args:
        model: the model (already on ``device``).
        train_loader: the single-process training loader (DataLoader or list of batch dicts).
        device: the training device (picks the backend and, on CUDA, this process's GPU).

    Returns:
        A :class:`DistributedRun`.
    """
    rank, world_size = init_from_env(device)
    if world_size == 1:
        return DistributedRun(model, train_loader)
    if device.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    wrapped = _DDP(model, device_ids=[device.index if device.index is not None else torch.cuda.current_device()]
                   if device.type == "cuda" else None)
    return DistributedRun(wrapped, _shard_loader(train_loader, rank, world_size), rank, world_size)
