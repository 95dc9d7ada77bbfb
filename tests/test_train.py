"""Tests of the training loop (urbankit.train) with tiny models and in-memory batches."""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import nn

from urbankit import train as T
from urbankit.errors import UrbankitError


class TinyNet(nn.Module):
    """A 2-layer conv net on ``optical_t1`` returning ``{"change": logits}``."""

    input_keys = ("optical_t1",)

    def __init__(self, c_in: int = 3, width: int = 4, dropout: float = 0.0):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, width, 3, padding=1)
        self.drop = nn.Dropout2d(dropout)
        self.conv2 = nn.Conv2d(width, 1, 1)

    def forward(self, batch):
        x = torch.relu(self.conv1(batch["optical_t1"]))
        return {"change": self.conv2(self.drop(x))}


class TwoHeadNet(nn.Module):
    """SAR and optical heads plus a fusion head (the Fusion-DA output layout)."""

    input_keys = ("optical_t1", "sar_t1")

    def __init__(self):
        super().__init__()
        self.opt = nn.Conv2d(3, 4, 3, padding=1)
        self.sar = nn.Conv2d(2, 4, 3, padding=1)
        self.h_opt = nn.Conv2d(4, 1, 1)
        self.h_sar = nn.Conv2d(4, 1, 1)
        self.h_fus = nn.Conv2d(8, 1, 1)

    def forward(self, batch):
        fo = torch.relu(self.opt(batch["optical_t1"]))
        fs = torch.relu(self.sar(batch["sar_t1"]))
        return {"buildings_t1_optical": self.h_opt(fo), "buildings_t1_sar": self.h_sar(fs),
                "buildings_t1_fusion": self.h_fus(torch.cat([fo, fs], 1))}


def make_batch(gen: torch.Generator, b: int = 4, size: int = 16, labelled=None) -> dict:
    x = torch.rand(b, 3, size, size, generator=gen)
    y = (x[:, :1] + 0.3 * x[:, 1:2] > 0.9).float()  # learnable from the input
    batch = {"optical_t1": x, "sar_t1": torch.rand(b, 2, size, size, generator=gen), "change": y,
             "buildings_t1": y.clone(), "site": [f"s{i % 3}" for i in range(b)]}
    batch["labelled"] = torch.ones(b, dtype=torch.bool) if labelled is None else torch.as_tensor(labelled)
    return batch


class ListDataset(torch.utils.data.Dataset):
    """Per-sample randomness from (epoch, index), like the torch layer's SceneDataset."""

    def __init__(self, n: int = 24, size: int = 16):
        self.n, self.size, self.epoch = n, size, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        g = torch.Generator().manual_seed(1000 * self.epoch + i)
        x = torch.rand(3, self.size, self.size, generator=g)
        y = (x[:1] + 0.3 * x[1:2] > 0.9).float()
        return {"optical_t1": x, "change": y, "labelled": torch.tensor(True)}


def loaders(seed: int = 0):
    ds = ListDataset()
    train = torch.utils.data.DataLoader(ds, batch_size=4, shuffle=True,
                                        generator=torch.Generator().manual_seed(seed))
    g = torch.Generator().manual_seed(99)
    val = [make_batch(g) for _ in range(2)]
    return train, val


def state_equal(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


FAST = dict(progress=False, device="cpu", lr=1e-2, loss_kw=None)


def run_fit(model, train, val, **kw):
    base = dict(strategy=T.Supervised(), progress=False, device="cpu", lr=1e-2)
    base.update(kw)
    return T.fit(model, train, val, **base)


def test_history_columns_and_result():
    torch.manual_seed(0)
    train, val = loaders()
    res = run_fit(TinyNet(), train, val, epochs=3, scheduler="exponential", seed=0)
    h = res.history
    assert list(h["epoch"]) == [1, 2, 3]
    for col in ("epoch", "train_loss", "train_loss_change", "val_loss", "val_f1", "val_precision",
                "val_recall", "val_iou", "lr", "seconds", "steps"):
        assert col in h.columns, col
    assert h.columns[:2].tolist() == ["epoch", "train_loss"]
    assert h["lr"].iloc[1] == pytest.approx(h["lr"].iloc[0] * 0.95)
    assert (h["seconds"] > 0).all()
    assert 1 <= res.best_epoch <= 3
    assert res.best_score == pytest.approx(h["val_f1"].max())
    assert res.monitor == "val_f1"
    fig = T.plot_history(h)
    assert len(fig.axes) >= 2
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_training_learns_and_restores_best():
    torch.manual_seed(0)
    train, val = loaders()
    model = TinyNet(width=8)
    res = run_fit(model, train, val, epochs=6, seed=0)
    assert res.history["train_loss"].iloc[-1] < res.history["train_loss"].iloc[0]
    assert res.history["val_f1"].max() > 0.5
    assert state_equal({k: v for k, v in model.state_dict().items()}, res.best_state)


def test_resume_is_bit_exact_on_cpu(tmp_path):
    """An interrupted run resumed from its checkpoint ends with the uninterrupted run's weights."""
    kw = dict(epochs=5, scheduler="cosine", optimizer="adamw", weight_decay=0.01, restore_best=False)

    torch.manual_seed(1)
    model_a = TinyNet(dropout=0.2)  # dropout: the torch RNG must be restored too
    train, val = loaders()
    run_fit(model_a, train, val, seed=3, **kw)

    class Interrupt(Exception):
        pass

    def stop_after_2(record, _):
        if record["epoch"] == 2:
            raise Interrupt

    torch.manual_seed(1)
    model_b = TinyNet(dropout=0.2)
    train, val = loaders()
    with pytest.raises(Interrupt):
        run_fit(model_b, train, val, seed=3, checkpoint_dir=tmp_path, callbacks=[stop_after_2], **kw)

    # a fresh process: new model (different init), new loaders, other global RNG state
    torch.manual_seed(12345)
    np.random.seed(7)
    model_c = TinyNet(dropout=0.2)
    train, val = loaders()
    res = run_fit(model_c, train, val, seed=3, checkpoint_dir=tmp_path, resume="latest", **kw)
    assert list(res.history["epoch"]) == [1, 2, 3, 4, 5]
    assert res.epochs_trained == 3  # epochs 3-5; 1-2 came with the checkpoint
    assert state_equal(model_a.state_dict(), model_c.state_dict())


def test_resume_with_make_loader_of_torch_layer(tmp_path):
    """Same bit-exactness through urbankit.datasets.make_loader (set_epoch + its generator)."""
    datasets = pytest.importorskip("urbankit.datasets")
    ds = ListDataset(n=20)
    kw = dict(epochs=4, restore_best=False, seed=0)

    torch.manual_seed(0)
    model_a = TinyNet(dropout=0.2)
    run_fit(model_a, datasets.make_loader(ds, batch_size=4, seed=5), None, **kw)

    def stop(record, _):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    torch.manual_seed(0)
    model_b = TinyNet(dropout=0.2)
    with pytest.raises(KeyboardInterrupt):
        run_fit(model_b, datasets.make_loader(ds, batch_size=4, seed=5), None, checkpoint_dir=tmp_path,
                callbacks=[stop], **kw)
    model_c = TinyNet(dropout=0.2)
    run_fit(model_c, datasets.make_loader(ds, batch_size=4, seed=5), None, checkpoint_dir=tmp_path,
            resume=tmp_path, **kw)
    assert state_equal(model_a.state_dict(), model_c.state_dict())


def test_resume_latest_without_checkpoint_starts_fresh_and_finished_run_is_noop(tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    res = run_fit(TinyNet(), train, val, epochs=2, checkpoint_dir=tmp_path, resume="latest")
    assert len(res.history) == 2 and res.epochs_trained == 2
    model = TinyNet()
    res2 = run_fit(model, train, val, epochs=2, checkpoint_dir=tmp_path, resume="latest")
    assert len(res2.history) == 2 and res2.epochs_trained == 0  # nothing left to do
    assert state_equal(model.state_dict(), res.best_state)
    with pytest.raises(T.CheckpointError, match="does not exist"):
        run_fit(TinyNet(), train, val, epochs=2, resume=tmp_path / "nope.ckpt")


def test_checkpoint_files_are_complete(tmp_path):
    torch.manual_seed(0)
    train, val = loaders()
    run_fit(TinyNet(), train, val, epochs=2, checkpoint_dir=tmp_path, scheduler="exponential",
            threshold_split="val")
    assert sorted(os.listdir(tmp_path)) == [T.CHECKPOINT_BEST, T.CHECKPOINT_LAST]
    ckpt = torch.load(tmp_path / T.CHECKPOINT_LAST, weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "epoch", "history", "best", "strategy",
                "config"):
        assert key in ckpt, key
    assert ckpt["epoch"] == 2 and len(ckpt["history"]) == 2
    assert set(ckpt["rng"]) >= {"python", "numpy", "torch", "cuda", "loaders"}
    assert ckpt["optimizer"]["state"]  # Adam moments are saved
    assert ckpt["scheduler"]["last_epoch"] == 2
    best = T.load_checkpoint(tmp_path, TinyNet())
    assert 0.0 <= best["best"]["threshold"] <= 1.0


def test_interrupted_save_leaves_no_temp_and_keeps_previous(tmp_path, monkeypatch):
    torch.manual_seed(0)
    train, val = loaders()
    run_fit(TinyNet(), train, val, epochs=1, checkpoint_dir=tmp_path)
    before = (tmp_path / T.CHECKPOINT_LAST).read_bytes()

    def broken(obj, f):
        f.write(b"half a checkpoint")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(T, "_serialize", broken)
    with pytest.raises(KeyboardInterrupt):
        run_fit(TinyNet(), train, val, epochs=3, checkpoint_dir=tmp_path, resume="latest")
    assert sorted(os.listdir(tmp_path)) == [T.CHECKPOINT_BEST, T.CHECKPOINT_LAST]
    assert (tmp_path / T.CHECKPOINT_LAST).read_bytes() == before
    assert T.load_checkpoint(tmp_path / T.CHECKPOINT_LAST)["epoch"] == 1


def test_nan_loss_raises_clear_error():
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(g) for _ in range(3)]
    batches[1]["optical_t1"][0, 0, 0, 0] = float("nan")
    with pytest.raises(T.NonFiniteLossError) as info:
        run_fit(TinyNet(), batches, None, epochs=2)
    err = info.value
    assert isinstance(err, UrbankitError)
    assert (err.epoch, err.step) == (1, 2)
    assert "loss_change" in err.terms and math.isnan(err.terms["loss_change"])
    msg = str(err)
    assert "epoch 1, step 2" in msg and "loss_change=nan" in msg and "optical_t1" in msg


def test_early_stopping_stops():
    torch.manual_seed(0)
    train, val = loaders()
    # lr 0: nothing changes after epoch 1, so val F1 never improves again
    res = run_fit(TinyNet(), train, val, epochs=20, lr=0.0, patience=2)
    assert res.stopped_early
    assert len(res.history) == 3
    assert res.best_epoch == 1


def test_threshold_selection_on_train_split():
    torch.manual_seed(0)
    train, val = loaders()
    res = run_fit(TinyNet(), train, val, epochs=2, threshold_split="train")
    assert 0.0 <= res.best_threshold <= 1.0
    assert round(res.best_threshold * 100) == pytest.approx(res.best_threshold * 100, abs=1e-6)


def test_supervised_uses_only_labelled_samples():
    g = torch.Generator().manual_seed(0)
    batch = make_batch(g, b=4, labelled=[True, False, True, False])
    model = TinyNet()
    out = model(batch)
    s = T.Supervised(loss="bce")
    loss, logs = s.compute_loss(model, batch, out)
    keep = batch["labelled"]
    ref = torch.nn.functional.binary_cross_entropy_with_logits(out["change"][keep], batch["change"][keep])
    assert torch.allclose(loss, ref)
    # no labelled sample: zero loss that still backpropagates
    batch["labelled"][:] = False
    loss, _ = s.compute_loss(model, batch, model(batch))
    loss.backward()
    assert float(loss.detach()) == 0.0


def test_consistency_ssl_fusion_da_mixes_labelled_and_unlabelled():
    pytest.importorskip("urbankit.losses")
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(g, labelled=[True, True, False, False]) for _ in range(3)]
    strat = T.fusion_da(phi=0.5)
    model = TwoHeadNet()
    loss, logs = strat.compute_loss(model, batches[0], model(batches[0]))
    assert {"loss_sup", "loss_cons", "loss_buildings_t1_sar", "loss_buildings_t1_fusion"} <= set(logs)
    assert float(logs["loss_cons"]) > 0
    assert float(loss.detach()) == pytest.approx(float(logs["loss_sup"]) + 0.5 * float(logs["loss_cons"]),
                                                 rel=1e-6)
    res = T.fit(TwoHeadNet(), batches, batches, strategy=strat, epochs=2, lr=1e-2, progress=False,
                device="cpu", val_key="buildings_t1_fusion", val_label_key="buildings_t1")
    assert "train_loss_cons" in res.history and "val_f1" in res.history


def test_mmcr_and_dualtask_weights():
    pytest.importorskip("urbankit.losses")
    m = T.mmcr()
    assert m.supervised.weights["change"] == 0.5
    assert sum(w for k, w in m.supervised.weights.items() if k != "change") == pytest.approx(0.5)
    assert m.weight == 0.01 and len(m.pairs) == 2
    d = T.dualtask_ssl()
    assert d.weight == 0.1 and d.pairs == [("change", "change_semantic")]


def test_missing_output_key_is_a_clear_error():
    g = torch.Generator().manual_seed(0)
    with pytest.raises(T.TrainingError, match="no key 'buildings_t1'"):
        run_fit(TinyNet(), [make_batch(g)], None, strategy=T.Supervised(
            loss="bce", targets={"buildings_t1": "buildings_t1"}), epochs=1)


def test_recipes_and_bad_options():
    assert T.recipe("daudt")["lr"] == 1e-3
    assert T.recipe("kth") == {"optimizer": "adamw", "lr": 1e-4, "weight_decay": 0.01, "scheduler": None}
    with pytest.raises(UrbankitError):
        T.recipe("nope")
    g = torch.Generator().manual_seed(0)
    with pytest.raises(UrbankitError, match="optimizer"):
        run_fit(TinyNet(), [make_batch(g)], None, optimizer="rmsprop")
    with pytest.raises(UrbankitError, match="scheduler"):
        run_fit(TinyNet(), [make_batch(g)], None, scheduler="step")
    res = run_fit(TinyNet(), [make_batch(g)], None, epochs=2, **T.recipe("daudt"))
    assert res.history["lr"].iloc[1] == pytest.approx(1e-3 * 0.95)
    assert res.monitor == "train_loss"


def test_steps_per_epoch_cycles_the_loader():
    g = torch.Generator().manual_seed(0)
    res = run_fit(TinyNet(), [make_batch(g) for _ in range(3)], None, epochs=2, steps_per_epoch=7)
    assert res.history["steps"].tolist() == [7, 7]


def test_progress_prints_one_line_per_epoch(capsys):
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(g) for _ in range(2)]
    run_fit(TinyNet(), batches, batches, epochs=2, progress=True)
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith("epoch ")]
    assert len(lines) == 2 and "val_f1" in lines[0]


@pytest.mark.parametrize("name, preset, build_kw, val_key, val_label", [
    ("fusionda_net", "fusion_da", {}, "buildings_t1_fusion", "buildings_t1"),
    ("mmcr_net", "mmcr", {"optical_channels": 4}, "change", "change"),
    ("siamdiff_dt", "dualtask_ssl", {"optical_channels": 4}, "change", "change"),
])
def test_presets_fit_the_model_zoo(name, preset, build_kw, val_key, val_label):
    """The SSL/DA presets' output keys match the zoo's models (labelled + unlabelled batches)."""
    models = pytest.importorskip("urbankit.models")
    g = torch.Generator().manual_seed(0)

    def batch(b=2, s=16):
        d = {"labelled": torch.tensor([True, False]), "site": ["a", "b"]}
        for t in ("t1", "t2"):
            d[f"optical_{t}"] = torch.rand(b, build_kw.get("optical_channels", 10), s, s, generator=g)
            d[f"sar_{t}"] = torch.rand(b, 2, s, s, generator=g)
            d[f"buildings_{t}"] = (torch.rand(b, 1, s, s, generator=g) > 0.7).float()
        d["change"] = d["buildings_t2"] * (1 - d["buildings_t1"])
        return d

    torch.manual_seed(0)
    model = models.build(name, width=0.125, **build_kw)
    batches = [batch(), batch()]
    res = T.fit(model, batches, batches, strategy=getattr(T, preset)(), epochs=1, progress=False,
                device="cpu", val_key=val_key, val_label_key=val_label)
    row = res.history.iloc[0]
    assert math.isfinite(row["train_loss"]) and row["train_loss_cons"] > 0
    assert math.isfinite(row["val_loss"]) and 0 <= row["val_f1"] <= 1


def test_progress_epoch_mode_prints_summaries_without_bars(capsys):
    g = torch.Generator().manual_seed(0)
    batches = [make_batch(g) for _ in range(2)]
    run_fit(TinyNet(), batches, None, epochs=2, progress="epoch")
    captured = capsys.readouterr()
    assert len([ln for ln in captured.out.splitlines() if ln.startswith("epoch ")]) == 2
    assert "batch/s" not in captured.err and "it/s" not in captured.err
    with pytest.raises(UrbankitError, match="progress"):
        run_fit(TinyNet(), batches, None, progress="bars")


def test_callbacks_receive_record_and_model():
    g = torch.Generator().manual_seed(0)
    seen = []
    model = TinyNet()
    run_fit(model, [make_batch(g)], None, epochs=2, callbacks=[lambda rec, m: seen.append((rec["epoch"], m))])
    assert [e for e, _ in seen] == [1, 2] and all(m is model for _, m in seen)
