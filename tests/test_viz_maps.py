"""Interactive maps (viz.city_map and the add_*_layer functions): the saved HTML holds every
layer and legend, is built with no network, and puts the pixels where they belong.

The page loads Leaflet itself from a CDN when it is *viewed* (folium's design); what is tested
here is that building and saving it needs no network and that the data layers are embedded
(PNG data URIs and GeoJSON), so no tile server is needed for them.
"""
from __future__ import annotations

import base64
import io
import re
import socket

import numpy as np
import pytest
import rioxarray  # noqa: F401
import xarray as xr
from affine import Affine
from PIL import Image

from urbankit import sdg, viz

CRS = "EPSG:32633"
X0, Y0, CELL = 400_000.0, 5_560_000.0, 100.0
TILE_HOSTS = ("tile.openstreetmap", "basemaps.cartocdn", "{z}/{x}/{y}")


def _grid(values: np.ndarray, name: str) -> xr.DataArray:
    h, w = values.shape[-2:]
    da = xr.DataArray(values, dims=values.ndim == 2 and ("y", "x") or ("band", "y", "x"), name=name,
                      coords={"y": Y0 - CELL * (np.arange(h) + 0.5), "x": X0 + CELL * (np.arange(w) + 0.5)})
    da.rio.write_crs(CRS, inplace=True)
    return da.rio.write_transform(Affine(CELL, 0, X0, 0, -CELL, Y0))


@pytest.fixture(scope="module")
def layers():
    n = 60
    yy, xx = np.mgrid[:n, :n]
    r = np.hypot(yy - n / 2, xx - n / 2)
    b1 = (r < 10).astype(np.float32)
    b2 = ((r < 14) | ((yy > 48) & (xx > 48))).astype(np.float32)   # growth + a leapfrog patch
    pop1, pop2 = b1 * 50 + 1.0, b2 * 70 + 1.0
    result = sdg.sdg_11_3_1(_grid(b1, "b1"), _grid(b2, "b2"), _grid(pop1, "p1"), _grid(pop2, "p2"), 2000, 2020,
                            city_definition=None)
    rgb = np.stack([b2 * 0.3 + 0.05, b2 * 0.2 + 0.1, np.full_like(b2, 0.08)]).astype(np.float32)
    rgb[:, :3, :3] = np.nan   # no-data corner
    optical = _grid(rgb, "optical").assign_coords(band=["B04", "B03", "B02"])
    return {"b1": _grid(b1, "b1"), "b2": _grid(b2, "b2"), "prob": _grid(np.clip(r / n, 0, 1), "p"),
            "change": _grid(b2 * (1 - b1), "change"), "result": result, "optical": optical}


def _city_map(layers, **kw):
    return viz.city_map(rgb=layers["optical"], built_up={"2000": layers["b1"], "2020": layers["b2"]},
                        probability=layers["prob"], change=layers["change"], sdg_result=layers["result"], **kw)


def _html(m) -> str:
    return m.get_root().render()


def test_city_map_holds_every_layer_and_legend_without_network(layers, monkeypatch, tmp_path):
    def refuse(*args, **kwargs):
        raise OSError("network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    m = _city_map(layers)
    out = tmp_path / "map.html"
    m.save(str(out))
    html = out.read_text()
    for name in ("Sentinel-2 RGB", "P(built-up)", "built-up 2000", "built-up 2020", "change",
                 "new development", "city extent"):
        assert f'"{name}"' in html or f"'{name}'" in html or name in html.split("urbankit-legend")[-1], name
    legend = html[html.index("class='urbankit-legend'"):]
    legend = legend[:legend.index("</div></div>") + 12]
    for label in ("built-up 2000", "built-up 2020", "change", "new development: infill",
                  "new development: extension", "new development: leapfrog", "city extent", "P(built-up)"):
        assert label in legend, label
    assert html.count("data:image/png;base64,") == 5      # probability, 2 built-up, change, classes
    assert html.count("data:image/jpeg;base64,") == 1     # rgb
    assert '"type": "FeatureCollection"' in html or '"FeatureCollection"' in html
    assert not any(host in html for host in TILE_HOSTS)   # no basemap by default
    assert "L.control.layers" in html


def test_basemap_is_opt_in_and_checked(layers):
    html = _html(viz.city_map(built_up={"2020": layers["b2"]}, basemap="OpenStreetMap"))
    assert "tile.openstreetmap" in html
    with pytest.raises(ValueError, match="unknown basemap"):
        viz.web_map(basemap="GoogleEarth")


def test_layers_land_where_the_pixels_are(layers):
    from rasterio.warp import transform_bounds

    arr, bounds = viz._to_web_mercator(layers["b2"], "b2", categorical=True, max_side=1024)
    west, south, east, north = transform_bounds(CRS, "EPSG:4326", *layers["b2"].rio.bounds())
    (s, w), (n, e) = bounds
    # the Mercator image has the source footprint (its bounding box in degrees) within a cell (100 m)
    cell_lat, cell_lon = 1e-3, 1.5e-3
    assert abs(s - south) < cell_lat and abs(n - north) < cell_lat
    assert abs(w - west) < cell_lon and abs(e - east) < cell_lon
    # the disc's centre stays at the centre of the image (within 2 pixels)
    yy, xx = np.nonzero(np.nan_to_num(arr) > 0.5)
    core = (yy < arr.shape[0] * 0.75) & (xx < arr.shape[1] * 0.75)   # leave out the leapfrog patch
    assert abs(yy[core].mean() - arr.shape[0] / 2) < 2 and abs(xx[core].mean() - arr.shape[1] / 2) < 2
    small, _ = viz._to_web_mercator(layers["b2"], "b2", categorical=True, max_side=20)
    assert max(small.shape) == 20


def test_mask_pixels_take_the_layer_colour(layers):
    m = viz.web_map()
    viz.add_mask_layer(m, layers["b1"], name="built", colour="#00ff00", opacity=1.0)
    uri = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", _html(m)).group(1)
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri))).convert("RGBA"))
    centre = img[img.shape[0] // 2, img.shape[1] // 2]
    assert tuple(centre) == (0, 255, 0, 255)
    assert img[0, 0, 3] == 0                                # outside the mask: transparent
    assert abs((img[..., 3] > 0).mean() - float(layers["b1"].mean())) < 0.03


def test_maps_are_folium_and_leave_no_widget_state():
    import subprocess
    import sys

    # leafmap (if installed) is not imported: its import registers ipyvuetify widgets whose
    # state would be saved into every executed notebook.
    code = ("import sys, folium; from urbankit import viz; m = viz.web_map(); "
            "print(type(m) is folium.Map, 'leafmap' in sys.modules, 'ipyvuetify' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "False"]


def test_bad_layers_get_clear_errors(layers):
    m = viz.web_map()
    with pytest.raises(TypeError, match="'raw'.*georeferenced xarray"):
        viz.add_mask_layer(m, np.ones((4, 4)), name="raw")
    no_crs = xr.DataArray(np.ones((4, 4)), dims=("y", "x"), coords={"y": np.arange(4.0), "x": np.arange(4.0)})
    with pytest.raises(ValueError, match="'plain'.*no CRS"):
        viz.add_mask_layer(m, no_crs, name="plain")
    with pytest.raises(ValueError, match="'city extent'.*empty"):
        viz.add_outline_layer(m, layers["b1"] * 0, name="city extent")
