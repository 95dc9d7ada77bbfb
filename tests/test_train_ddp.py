"""fit under torchrun (issue 17, item 2): 2 gloo processes give the same weights as 1 process
with the same global batch; batches that do not split over the processes are refused."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from urbankit import parallel
from urbankit.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = '''
import sys
import torch
from torch.utils.data import DataLoader, Dataset
from urbankit.parallel import world
from urbankit.train import Supervised, fit

torch.set_num_threads(1)


class Net(torch.nn.Module):
    output_keys = ("change",)

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 1, 3, padding=1))

    def forward(self, batch):
        return {"change": self.body(batch["optical_t1"])}


class Data(Dataset):
    def __init__(self):
        self.x = torch.rand(24, 3, 16, 16, generator=torch.Generator().manual_seed(1))

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"optical_t1": self.x[i], "change": (self.x[i, :1] > 0.5).float()}


torch.manual_seed(0)
model = Net()
loader = DataLoader(Data(), batch_size=8, shuffle=True, generator=torch.Generator().manual_seed(0))
res = fit(model, loader, None, strategy=Supervised(loss="bce", targets={"change": "change"}), epochs=3,
          optimizer="sgd", lr=0.5, device="cpu", amp=False, progress="epoch", seed=0, restore_best=False,
          checkpoint_dir=sys.argv[2])
rank, size = world()
if rank == 0:
    torch.save({"state": model.state_dict(), "loss": list(res.history["train_loss"]), "world": size}, sys.argv[1])
'''


def _run(cmd, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def test_two_gloo_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    one = _run([sys.executable, str(script), str(tmp_path / "one.pt"), str(tmp_path / "ck1")], tmp_path)
    two = _run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(script),
                str(tmp_path / "two.pt"), str(tmp_path / "ck2")], tmp_path)
    a, b = torch.load(tmp_path / "one.pt"), torch.load(tmp_path / "two.pt")
    assert (a["world"], b["world"]) == (1, 2)
    assert b["loss"] == pytest.approx(a["loss"], abs=1e-6)
    assert a["loss"][-1] < a["loss"][0]                     # it trained
    for k, v in a["state"].items():
        torch.testing.assert_close(b["state"][k], v, rtol=0, atol=1e-6)
    assert two.count("epoch 1/3") == 1                      # only rank 0 prints
    assert (tmp_path / "ck2" / "last.ckpt").is_file()       # ... and writes the checkpoints
    assert one.count("epoch 1/3") == 1


def test_batches_that_do_not_split_over_the_processes_are_refused():
    from torch.utils.data import DataLoader, TensorDataset

    batches = [{"optical_t1": torch.zeros(6, 1, 2, 2), "site": ["a"] * 6}]
    shard = parallel._shard_loader(batches, rank=1, world_size=2)
    assert shard[0]["optical_t1"].shape[0] == 3 and shard[0]["site"] == ["a"] * 3
    with pytest.raises(ConfigError, match="does not split over 4 processes"):
        parallel._shard_loader(batches, rank=0, world_size=4)
    loader = DataLoader(TensorDataset(torch.zeros(10, 1)), batch_size=4)   # last batch: 2 samples
    with pytest.raises(ConfigError, match="last batch"):
        parallel._shard_loader(loader, rank=0, world_size=4)
    sharded = parallel._shard_loader(DataLoader(TensorDataset(torch.arange(8.0)), batch_size=4), 1, 2)
    assert [b[0].tolist() for b in sharded] == [[2.0, 3.0], [6.0, 7.0]]
