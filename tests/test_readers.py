"""One conformance test for every dataset reader (urbankit.data.reader).

Each reader: constructs on the sample it writes itself, lists sites, reads a site into a valid
scene whose ``dataset`` attr is its key, plots it, and refuses a bad split. Readers whose sample
is embedded in ``data_samples/`` must write byte-identical files. Real data (``../shared``) is
read where present (its ``spacenet7/`` is a SpaceNet 7 month, not the S1S2 layout).
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from http.server import BaseHTTPRequestHandler

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from urbankit.data.generic import GeoTIFFSeries  # noqa: E402
from urbankit.data.ghsl import GHSL  # noqa: E402
from urbankit.data.oscd import OSCD  # noqa: E402
from urbankit.data.reader import READERS, Reader, reader_for  # noqa: E402
from urbankit.data.samples import manifest, raster_difference  # noqa: E402
from urbankit.data.schema import validate_scene  # noqa: E402
from urbankit.data.spacenet7 import SpaceNet7  # noqa: E402
from urbankit.data.vhr import DSIFN, LEVIRCD, SYSUCD, WHUCD  # noqa: E402
from urbankit.data.worldpop import WorldPop  # noqa: E402
from urbankit.errors import ConfigError  # noqa: E402

ALL = [OSCD, SpaceNet7, LEVIRCD, WHUCD, DSIFN, SYSUCD, GeoTIFFSeries, GHSL, WorldPop]


def test_every_reader_is_registered_under_its_key():
    assert set(READERS) >= {cls.key for cls in ALL}
    for cls in ALL:
        assert issubclass(cls, Reader) and reader_for(cls.key) is cls
        assert cls.key == cls.key.lower() and " " not in cls.key and "-" not in cls.key
    with pytest.raises(ConfigError, match="unknown dataset reader 'nope'"):
        reader_for("nope")


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.key)
def test_reader_conformance(cls, tmp_path):
    root = cls.write_sample(tmp_path, seed=0)
    reader = cls(root)
    sites = reader.sites
    assert sites and all(isinstance(s, str) for s in sites) and len(reader) == len(sites)
    scene = reader.read(sites[0])
    validate_scene(scene)
    assert scene.attrs["dataset"] == cls.key and scene.attrs["site"].startswith(sites[0][:4])
    assert {"optical", "sar", "change", "buildings", "population"} & set(scene.data_vars)
    fig = reader.plot(sites[0])
    assert fig.axes and fig.axes[0].get_title()
    plt.close(fig)
    with pytest.raises(ConfigError, match="split must be"):
        cls(root, split="nonsense")


@pytest.mark.parametrize("cls", [c for c in ALL if c.sample_folder], ids=lambda c: c.key)
def test_embedded_samples_are_what_the_reader_writes(cls, tmp_path, repo_root):
    """The reader owns its embedded sample: rewriting it gives the committed files (bytes, or float
    rasters to one float32 rounding)."""
    cls.write_sample(tmp_path, seed=0)
    committed = repo_root / "data_samples" / cls.sample_folder
    written = manifest(tmp_path / cls.sample_folder)
    expected = manifest(committed)
    assert written and set(written) == set(expected)
    # one-ulp float32 differences between CPUs are allowed, nothing else (samples.raster_difference)
    differing = {n: raster_difference(tmp_path / cls.sample_folder / n, committed / n)
                 for n in written if written[n] != expected[n]}
    assert not {n: why for n, why in differing.items() if why}
    assert cls(committed).sites  # and the committed copy reads


def test_split_filters_sites(tmp_path):
    root = DSIFN.write_sample(tmp_path)
    every = DSIFN(root).sites
    train, test = DSIFN(root, split="train").sites, DSIFN(root, split="test").sites
    assert train and test and set(train) | set(test) <= set(every) and not set(train) & set(test)
    assert DSIFN(root, split="train").read(train[0]).attrs["split"] == "train"


def test_bands_and_download_are_checked(tmp_path):
    root = LEVIRCD.write_sample(tmp_path)
    assert LEVIRCD(root, bands=["R", "G", "B"]).sites
    with pytest.raises(ConfigError, match="images are RGB"):
        LEVIRCD(root, bands=["B04"])
    oscd = OSCD.write_sample(tmp_path)
    assert list(OSCD(oscd, bands=["B04", "B03", "B02"]).read("riverton")["band"].values) == ["B04", "B03", "B02"]
    from urbankit.data.bands import resolve_bands

    # a subset name is one word, not a list of letters
    assert list(OSCD(oscd, bands="rgbn").read("riverton")["band"].values) == list(resolve_bands("rgbn"))
    with pytest.raises(ConfigError, match="no registry entry"):
        GeoTIFFSeries(tmp_path / "missing", download=True)
    with pytest.raises(ConfigError, match=r"folder named \['oscd'\]"):
        OSCD(tmp_path / "not_oscd", download=True)  # refused before any network access


@pytest.mark.parametrize(("cls", "folder"), [(OSCD, "oscd"), (LEVIRCD, "levir_cd"), (DSIFN, "dsifn")],
                         ids=lambda x: getattr(x, "key", x))
def test_real_data_reads_through_the_same_shape(cls, folder, real_data):
    root = real_data / folder
    if not root.is_dir():
        pytest.skip(f"{root} is not present")
    reader = cls(root)
    scene = reader.read(reader.sites[0])
    validate_scene(scene)
    assert scene.attrs["dataset"] == cls.key


class _Files(BaseHTTPRequestHandler):
    """Serves ``server.files[path]`` bytes (no ranges, no faults)."""

    def log_message(self, *args):
        pass

    def do_GET(self):  # noqa: N802
        data = self.server.files.get(self.path.split("?")[0])
        if data is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_download_fetches_the_registry_entries_into_root(tmp_path, local_http_server, monkeypatch):
    from urbankit.data.download import DownloadError
    from urbankit.data.sources import SOURCES, Source

    folder = LEVIRCD.write_sample(tmp_path / "made")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*.png")):
            zf.write(path, path.relative_to(folder).as_posix())
    data = buf.getvalue()
    server = local_http_server(_Files, files={"/levir.zip": data})
    common = dict(url=server.base + "/levir.zip", filename="levir.zip", licence="test", citation=None,
                  target="levir_cd")
    monkeypatch.setitem(SOURCES, "test_levir", Source("test_levir", "t", sha256=hashlib.sha256(data).hexdigest(),
                                                      **common))
    monkeypatch.setitem(SOURCES, "test_levir_unverified", Source("test_levir_unverified", "t", **common))
    monkeypatch.setattr(LEVIRCD, "sources", ("test_levir_unverified",))
    with pytest.raises(DownloadError, match="allow_unverified"):
        LEVIRCD(tmp_path / "data" / "levir_cd", download=True)  # checksum=True refuses an unverified entry
    monkeypatch.setattr(LEVIRCD, "sources", ("test_levir",))
    reader = LEVIRCD(tmp_path / "data" / "levir_cd", download=True)
    assert reader.sites == ["train_1", "train_2", "train_3", "train_4"]
    validate_scene(reader.read("train_1"))
