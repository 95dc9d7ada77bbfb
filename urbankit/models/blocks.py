"""Shared building blocks of the model zoo, plus the batch-dict plumbing every model uses.

Contents (each class documents its input/output shapes):

- :class:`ChangeModel`: base class of every urbankit model (``input_keys``, ``output_keys``,
  reading tensors from the batch dict with clear errors).
- Hafner U-Net parts (the KTH repositories' ``utils/networks.py``, e.g. Hafner et al. 2022, GRSL):
  :class:`DoubleConv`, :class:`InConv`, :class:`Down`, :class:`Up`, :class:`OutConv`,
  :class:`Encoder`, :class:`Decoder`.
- Daudt FC blocks (Daudt et al. 2018, ICIP): :class:`FCConvBlock`, :class:`FCEncoder`, :class:`FCDecoder`.
- :class:`ASPP` (DeepLabv3, Chen et al. 2017), :class:`ChannelAttention`,
  :class:`SpatialAttention` and :class:`CBAM` (Woo et al. 2018), and the
  :class:`DifferenceAttention` module of HDANet (Wang et al. 2022).

Everything is plain PyTorch; shapes use B (batch), C (channels), H, W (pixels).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import ConfigError

#: The three ways a model can see the sensors: SAR only, optical only, or both stacked.
MODALITIES = ("sar", "optical", "fusion")

#: The default Hafner U-Net widths (the U-Net of the KTH papers' public code, e.g. Hafner et al. 2022, GRSL).
DEFAULT_TOPOLOGY = (64, 128, 256, 512)


# ----------------------------------------------------------------------------------------
# Width knob and batch plumbing
# ----------------------------------------------------------------------------------------

def scale_widths(widths: Sequence[int], width: float = 1.0) -> list[int]:
    """Multiply channel widths by ``width`` (rounded, at least 1).

    >>> scale_widths([64, 128, 256, 512], 0.25)
    [16, 32, 64, 128]
    """
    if not (0 < float(width) <= 8):
        raise ConfigError(f"width must be a multiplier in (0, 8], got {width!r}")
    if len(widths) == 0 or any(int(w) < 1 for w in widths):
        raise ConfigError(f"channel widths must be a non-empty list of positive ints, got {list(widths)!r}")
    return [max(1, round(int(w) * float(width))) for w in widths]


def check_modality(modality: str, model: str) -> str:
    """Return ``modality`` if it is one of ``sar``, ``optical``, ``fusion``, else raise ConfigError."""
    if modality not in MODALITIES:
        raise ConfigError(f"model {model!r}: modality must be one of {MODALITIES}, got {modality!r}")
    return modality


def modality_keys(modality: str, date: str) -> list[str]:
    """Batch keys read for one date: ``sar`` -> [sar_t1]; ``fusion`` -> [sar_t1, optical_t1]."""
    if modality == "fusion":
        return [f"sar_{date}", f"optical_{date}"]
    return [f"{modality}_{date}"]


def check_channels(value: int, name: str, model: str) -> int:
    """``value`` if it is a positive int number of bands, else ConfigError naming ``model`` and ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"model {model!r}: {name} must be a positive int (number of bands), got {value!r}")
    return value


class ChangeModel(nn.Module):
    """Base class of every urbankit model.

    A model is called as ``model(batch)`` with the batch dict of CONTRIBUTING.md and returns a
    dict of **logits**, each (B, 1, H, W) at the input resolution.

    Attributes:
        name: registry name.
        input_keys: batch keys the model reads (e.g. ``("optical_t1", "optical_t2")``).
        output_keys: keys of the returned dict.
        channels: expected number of channels per input key.
        pad_multiple: input sizes that are multiples of this need no internal padding or
            resampling (e.g. 16 for a U-Net with 4 poolings); other sizes work too. Inference
            helpers may pad to it for seamless tiling.
        size_dependent: True when the output at a pixel depends on the size of the whole input
            (global pooling in ASPP image pooling or channel attention, global self-attention),
            so a model trained on ``inference_window`` tiles must also predict on such tiles
            (:func:`urbankit.inference.predict` tiles with ``inference_window`` then).
        inference_window: the training window in pixels (H = W) of a size-dependent model
            (default 256, the HDANet comparison's tile size); None for size-independent models.
    """

    name: str = "model"
    pad_multiple: int = 1
    size_dependent: bool = False
    inference_window: int | None = None

    def __init__(self) -> None:
        super().__init__()
        self.input_keys: tuple[str, ...] = ()
        self.output_keys: tuple[str, ...] = ()
        self.channels: dict[str, int] = {}

    def _set_inputs(self, channels: Mapping[str, int], outputs: Sequence[str]) -> None:
        self.channels = dict(channels)
        self.input_keys = tuple(channels)
        self.output_keys = tuple(outputs)

    def read(self, batch: Mapping[str, Tensor], keys: Sequence[str]) -> Tensor:
        """Concatenate ``batch[k]`` for ``k`` in ``keys`` along channels -> (B, sum C_k, H, W).

        Raises ConfigError naming the key when it is missing, not a 4-D tensor, has a channel
        count other than the one the model was built with, or its size differs from the others.
        """
        if not isinstance(batch, Mapping):
            raise ConfigError(
                f"model {self.name!r} takes a batch dict with keys {list(self.input_keys)}, "
                f"got {type(batch).__name__}"
            )
        tensors = []
        for key in keys:
            if key not in batch:
                raise ConfigError(
                    f"model {self.name!r} needs batch key {key!r} (it reads {list(self.input_keys)}); "
                    f"the batch has {sorted(k for k in batch if not k.startswith('_'))}"
                )
            x = batch[key]
            if not torch.is_tensor(x) or x.dim() != 4:
                shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
                raise ConfigError(f"model {self.name!r}: batch[{key!r}] must be a (B, C, H, W) tensor, got {shape}")
            expected = self.channels.get(key)
            if expected is not None and x.shape[1] != expected:
                raise ConfigError(
                    f"model {self.name!r}: batch[{key!r}] has {x.shape[1]} channels, the model was built "
                    f"for {expected}; build it with the matching *_channels argument"
                )
            if tensors and x.shape[-2:] != tensors[0].shape[-2:]:
                raise ConfigError(
                    f"model {self.name!r}: batch[{key!r}] is {tuple(x.shape[-2:])} pixels but "
                    f"batch[{keys[0]!r}] is {tuple(tensors[0].shape[-2:])}"
                )
            tensors.append(x)
        return tensors[0] if len(tensors) == 1 else torch.cat(tensors, dim=1)

    def extra_repr(self) -> str:
        """The input and output keys, shown in the module's repr."""
        return f"inputs={list(self.input_keys)}, outputs={list(self.output_keys)}"


def pad_to_multiple(x: Tensor, multiple: int, mode: str = "replicate") -> tuple[Tensor, tuple[int, int]]:
    """Pad (B, C, H, W) at the bottom/right so H and W are multiples of ``multiple``.

    Returns the padded tensor and the original (H, W) for :func:`crop_to`.
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


def crop_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Crop (B, C, H', W') to the top-left (B, C, H, W) given by ``size`` = (H, W)."""
    return x[..., : size[0], : size[1]]


# ----------------------------------------------------------------------------------------
# Hafner U-Net parts (the KTH papers' public code)
# ----------------------------------------------------------------------------------------

class DoubleConv(nn.Module):
    """[3x3 conv (padding 1, bias) -> BatchNorm -> ReLU] x 2.

    (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Conv2d(out_ch, out_ch, 3, padding=1), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H, W)."""
        return self.conv(x)


class InConv(DoubleConv):
    """The first DoubleConv of a Hafner U-Net, at full resolution: (B, in_ch, H, W) -> (B, out_ch, H, W)."""


class Down(nn.Module):
    """2x2 max-pool, then DoubleConv: (B, in_ch, H, W) -> (B, out_ch, H//2, W//2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pool = nn.MaxPool2d(2)
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_ch, H, W) -> (B, out_ch, H/2, W/2): max-pool, then DoubleConv."""
        return self.conv(self.pool(x))


class Up(nn.Module):
    """Upsample the deeper map, zero-pad it to the skip's size, concat [skip, up], DoubleConv.

    Args:
        in_ch: channels after the concatenation; the deeper map and the skip have
            ``in_ch // 2`` channels each (2x2 transposed conv, stride 2, in_ch/2 -> in_ch/2).
        out_ch: output channels.

    forward(deep (B, in_ch/2, h, w), skip (B, in_ch/2, H, W)) -> (B, out_ch, H, W), where
    H >= 2h (odd sizes are handled by the zero padding).
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.up = nn.ConvTranspose2d(in_ch // 2, in_ch // 2, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_ch, out_ch)

    def forward(self, deep: Tensor, skip: Tensor) -> Tensor:
        """Upsampled ``deep`` (B, C_deep, h, w) joined with ``skip`` (B, C_skip, H, W) -> (B, out_ch, H, W)."""
        x = self.up(deep)
        dy, dx = skip.shape[-2] - x.shape[-2], skip.shape[-1] - x.shape[-1]
        x = F.pad(x, (dx // 2, dx - dx // 2, dy // 2, dy - dy // 2))
        return self.conv(torch.cat([skip, x], dim=1))


class OutConv(nn.Module):
    """1x1 conv to logits: (B, in_ch, H, W) -> (B, out_ch, H, W). No sigmoid (it lives in the loss)."""

    def __init__(self, in_ch: int, out_ch: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(in_ch, out_ch, kernel_size=1)

    def forward(self, x: Tensor) -> Tensor:
        """1x1 convolution: (B, in_ch, H, W) -> (B, out_ch, H, W) logits."""
        return self.conv(x)


class Encoder(nn.Module):
    """Hafner U-Net encoder: InConv + one Down per topology entry.

    With topology [64,128,256,512] the feature maps are 64 (H), 128 (H/2), 256 (H/4),
    512 (H/8) and 512 (H/16): the deepest Down keeps its width (as in the KTH code).

    forward(x (B, in_ch, H, W)) -> list of len(topology)+1 feature maps, **deepest first**.
    """

    def __init__(self, in_ch: int, topology: Sequence[int] = DEFAULT_TOPOLOGY):
        super().__init__()
        topology = list(topology)
        self.topology = topology
        self.inc = InConv(in_ch, topology[0])
        downs = []
        for i, width in enumerate(topology):
            out = topology[i + 1] if i + 1 < len(topology) else width  # the deepest keeps its width
            downs.append(Down(width, out))
        self.downs = nn.ModuleList(downs)

    def forward(self, x: Tensor) -> list[Tensor]:
        """The feature maps of (B, C, H, W), deepest first (H/2^n ... H)."""
        features = [self.inc(x)]
        for down in self.downs:
            features.append(down(features[-1]))
        return features[::-1]


class Decoder(nn.Module):
    """Hafner U-Net decoder: one Up per topology entry, consuming the Encoder's feature list.

    ``topology`` is the encoder's; the skip features may be wider by a factor (e.g. the
    multi-modal Siam-Diff concatenates SAR and optical differences and passes a doubled
    topology). For [64,128,256,512]: up 1024->256, 512->128, 256->64, 128->64.

    forward(features: deepest-first list as returned by :class:`Encoder`)
        -> (B, topology[0], H, W) at the resolution of the last (full-resolution) feature.
    """

    def __init__(self, topology: Sequence[int] = DEFAULT_TOPOLOGY):
        super().__init__()
        topology = list(topology)
        self.topology = topology
        ups = []
        for i in reversed(range(len(topology))):
            out = topology[i - 1] if i > 0 else topology[0]
            ups.append(Up(2 * topology[i], out))
        self.ups = nn.ModuleList(ups)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """Decode encoder features (deepest first) to (B, topology[0], H, W)."""
        x = features[0]
        for up, skip in zip(self.ups, features[1:]):
            x = up(x, skip)
        return x


class UNetFeatures(nn.Module):
    """Encoder + Decoder without the OutConv: (B, in_ch, H, W) -> (B, topology[0], H, W)."""

    def __init__(self, in_ch: int, topology: Sequence[int] = DEFAULT_TOPOLOGY):
        super().__init__()
        self.encoder = Encoder(in_ch, topology)
        self.decoder = Decoder(topology)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, topology[0], H, W) decoder features."""
        return self.decoder(self.encoder(x))


def feature_difference(f1: Tensor, f2: Tensor, diff: str) -> Tensor:
    """Siamese fusion of two feature maps: ``signed`` = f2 - f1 (KTH code), ``abs`` = |f1 - f2| (Daudt)."""
    if diff == "signed":
        return f2 - f1
    if diff == "abs":
        return (f1 - f2).abs()
    raise ConfigError(f"diff must be 'signed' or 'abs', got {diff!r}")


# ----------------------------------------------------------------------------------------
# Daudt FC blocks (Daudt et al. 2018, ICIP)
# ----------------------------------------------------------------------------------------

#: Convolutions per encoder stage in Daudt's FC networks (16, 32, 64, 128 channels).
FC_CONVS_PER_STAGE = (2, 2, 3, 3)
FC_WIDTHS = (16, 32, 64, 128)


def fc_conv3x3(in_ch: int, out_ch: int, transposed: bool = False) -> nn.Module:
    """A size-preserving 3x3 convolution (padding 1); ``transposed`` uses ConvTranspose2d, stride 1.

    A stride-1 transposed conv computes the same family of functions as a plain conv (with the
    kernel flipped) and has the same parameters; Daudt's decoder uses it, and so do we, which
    also keeps the original weight initialisation.
    """
    if transposed:
        return nn.ConvTranspose2d(in_ch, out_ch, 3, padding=1)
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


class FCConvBlock(nn.Sequential):
    """3x3 conv (padding 1) -> BatchNorm -> ReLU -> Dropout2d(p): (B, in, H, W) -> (B, out, H, W).

    ``transposed=True`` (decoder) uses a stride-1 3x3 transposed conv, see :func:`fc_conv3x3`.
    """

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.2, transposed: bool = False):
        super().__init__(
            fc_conv3x3(in_ch, out_ch, transposed), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
            nn.Dropout2d(p=dropout),
        )


class FCEncoder(nn.Module):
    """Daudt's FC encoder: 4 stages of (2, 2, 3, 3) FCConvBlocks, each followed by 2x2 max-pool.

    forward(x (B, in_ch, H, W)) -> (skips, bottleneck): skips = [s1 (w0, H), s2 (w1, H/2),
    s3 (w2, H/4), s4 (w3, H/8)] taken *before* each pooling; bottleneck = pooled s4 (w3, H/16).
    """

    def __init__(self, in_ch: int, widths: Sequence[int] = FC_WIDTHS, dropout: float = 0.2):
        super().__init__()
        stages = []
        prev = in_ch
        for width, n in zip(widths, FC_CONVS_PER_STAGE):
            blocks = [FCConvBlock(prev, width, dropout)] + [FCConvBlock(width, width, dropout) for _ in range(n - 1)]
            stages.append(nn.Sequential(*blocks))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x: Tensor) -> tuple[list[Tensor], Tensor]:
        """(B, C, H, W) -> (skips at H, H/2, H/4, H/8; bottleneck at H/16)."""
        skips = []
        for stage in self.stages:
            x = stage(x)
            skips.append(x)
            x = self.pool(x)
        return skips, x


class FCDecoder(nn.Module):
    """Daudt's FC decoder, mirroring :class:`FCEncoder`.

    Each stage: 3x3 transposed conv, stride 2, output_padding 1 (doubles the size), then
    replication padding (right/bottom) to the skip's size, concat [upsampled, *skip parts], then
    (3, 3, 2, 2) FCConvBlocks from the deepest stage up, written as stride-1 3x3 transposed
    convs as in the original (:func:`fc_conv3x3`). The last conv (-> ``n_classes``) has no
    BN/ReLU/Dropout.

    Args:
        widths: encoder widths (16, 32, 64, 128).
        skip_parts: how many skip tensors are concatenated per level: 1 (FC-EF, FC-Siam-diff)
            or 2 (FC-Siam-conc).
        n_classes: output channels (2 in the original: log-softmax over no-change/change).

    forward(bottleneck (B, w3, H/16, W/16), skips: list of lists, skips[k] = the tensors to
        concatenate at level k (shallow first)) -> (B, n_classes, H, W).
    """

    def __init__(self, widths: Sequence[int] = FC_WIDTHS, skip_parts: int = 1, n_classes: int = 2,
                 dropout: float = 0.2):
        super().__init__()
        widths = list(widths)
        self.ups = nn.ModuleList()
        self.stages = nn.ModuleList()
        for k in reversed(range(len(widths))):
            w = widths[k]
            n = FC_CONVS_PER_STAGE[k]
            self.ups.append(nn.ConvTranspose2d(w, w, 3, stride=2, padding=1, output_padding=1))
            layers: list[nn.Module] = [FCConvBlock(w * (1 + skip_parts), w, dropout, transposed=True)]
            layers += [FCConvBlock(w, w, dropout, transposed=True) for _ in range(n - 2)]
            if k > 0:
                layers.append(FCConvBlock(w, widths[k - 1], dropout, transposed=True))
            else:
                layers.append(fc_conv3x3(w, n_classes, transposed=True))
            self.stages.append(nn.Sequential(*layers))

    def forward(self, bottleneck: Tensor, skips: Sequence[Sequence[Tensor]]) -> Tensor:
        """Decode the bottleneck with the skips of each level -> (B, 2, H, W) two-class logits."""
        x = bottleneck
        for up, stage, parts in zip(self.ups, self.stages, reversed(list(skips))):
            x = up(x)
            target = parts[0]
            dy, dx = target.shape[-2] - x.shape[-2], target.shape[-1] - x.shape[-1]
            if dy or dx:  # replication padding to the skip size (odd input sizes)
                x = F.pad(x, (0, dx, 0, dy), mode="replicate")
            x = stage(torch.cat([x, *parts], dim=1))
        return x


# ----------------------------------------------------------------------------------------
# ASPP, CBAM, difference attention
# ----------------------------------------------------------------------------------------

def conv_bn_relu(in_ch: int, out_ch: int, kernel: int = 3, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU, 'same' padding for odd kernels."""
    pad = dilation * (kernel - 1) // 2
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride=stride, padding=pad, dilation=dilation, bias=False),
        nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True),
    )


class ASPP(nn.Module):
    """Atrous Spatial Pyramid Pooling of DeepLabv3 (Chen et al. 2017).

    Five parallel branches with ``out_ch`` channels each: a 1x1 conv, three 3x3 convs with
    dilation rates ``rates`` (6, 12, 18), and image pooling (global average -> 1x1 conv ->
    bilinear upsampling); concatenated (5*out_ch) and projected by a 1x1 conv to ``out_ch``.
    Each conv is followed by BN + ReLU, except the image-pooling conv (bias + ReLU, no BN), so
    that a batch of one image still trains (BN on a 1x1 map of one sample is undefined).

    (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    def __init__(self, in_ch: int, out_ch: int = 256, rates: Sequence[int] = (6, 12, 18)):
        super().__init__()
        self.branches = nn.ModuleList(
            [conv_bn_relu(in_ch, out_ch, 1)] + [conv_bn_relu(in_ch, out_ch, 3, dilation=r) for r in rates]
        )
        self.image_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_ch, out_ch, 1), nn.ReLU(inplace=True))
        self.project = conv_bn_relu(out_ch * (len(rates) + 2), out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Atrous pyramid and image pooling of (B, C, H, W) -> (B, out_ch, H, W)."""
        outs = [branch(x) for branch in self.branches]
        pooled = self.image_pool(x)
        outs.append(F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=False))
        return self.project(torch.cat(outs, dim=1))


class ChannelAttention(nn.Module):
    """CBAM channel attention (Woo et al. 2018): w = sigmoid(MLP(avgpool(x)) + MLP(maxpool(x))).

    The MLP is shared: C -> max(1, C // reduction) -> C (1x1 convs, no bias).
    forward(x (B, C, H, W)) -> weights (B, C, 1, 1) in (0, 1); multiply them with x yourself.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        """Channel weights in (0, 1) of (B, C, H, W): shape (B, C, 1, 1)."""
        avg = F.adaptive_avg_pool2d(x, 1)
        mx = F.adaptive_max_pool2d(x, 1)
        return torch.sigmoid(self.mlp(avg) + self.mlp(mx))


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a = sigmoid(conv7x7([mean_c(x), max_c(x)])).

    forward(x (B, C, H, W)) -> weights (B, 1, H, W) in (0, 1).
    """

    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        """Spatial weights in (0, 1) of (B, C, H, W): shape (B, 1, H, W)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(pooled))


class CBAM(nn.Module):
    """Convolutional Block Attention Module: channel attention, then spatial attention.

    (B, C, H, W) -> (B, C, H, W): x' = Mc(x) * x; out = Ms(x') * x'.
    """

    def __init__(self, channels: int, reduction: int = 16, kernel_size: int = 7):
        super().__init__()
        self.channel = ChannelAttention(channels, reduction)
        self.spatial = SpatialAttention(kernel_size)

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) reweighted by channel, then spatial attention (same shape)."""
        x = self.channel(x) * x
        return self.spatial(x) * x


class DifferenceAttention(nn.Module):
    """HDANet's Difference Attention Module (DAM; Wang et al. 2022), for one resolution branch.

    For features T1, T2 (B, C, H, W) of the two dates:

    1. change-intensity map CIM = sqrt(sum_c (T1 - T2)^2 + eps)        (B, 1, H, W)
    2. spatial attention A = sigmoid(conv3x3(CIM))  (1 -> 1 channel)    (B, 1, H, W)
    3. difference image DI = |T1 - T2|                                  (B, C, H, W)
    4. spatially attended difference F_s = A * DI
    5. [default, CBAM-style] channel attention w = ChannelAttention(F_s) (reduction 16),
       F = w * F_s, plus the residual DI [kit choice, ``residual=True``]: output = F + DI.

    The sequential wiring (spatial, then channel) and the residual are **unverified kit
    choices**: the course's slides only say the spatial attention is "combined with channel
    attention" and show F_CIM = A_CIM * DI, without a residual. With the residual the attention
    can only add to DI (it can never suppress an unchanged area below DI); ``residual=False``
    gives output = F, which can. With ``spatial=False`` step 2 is skipped (A = 1); with
    ``channel=False`` step 5 is skipped (output = F_s, no residual either). When T1 == T2 the
    output is exactly zero (DI = 0).

    forward(t1, t2) -> (B, C, H, W).
    """

    def __init__(self, channels: int, reduction: int = 16, spatial: bool = True, channel: bool = True,
                 eps: float = 1e-6, residual: bool = True):
        super().__init__()
        self.eps = eps
        self.residual = bool(residual)
        self.spatial = nn.Conv2d(1, 1, 3, padding=1) if spatial else None
        self.channel = ChannelAttention(channels, reduction) if channel else None

    def forward(self, t1: Tensor, t2: Tensor) -> Tensor:
        """Attended difference |t1 - t2| of two (B, C, H, W) maps (same shape)."""
        diff = t1 - t2
        di = diff.abs()
        out = di
        if self.spatial is not None:
            cim = torch.sqrt(diff.pow(2).sum(dim=1, keepdim=True) + self.eps)
            out = torch.sigmoid(self.spatial(cim)) * out
        if self.channel is not None:
            out = self.channel(out) * out
            if self.residual:
                out = out + di
        return out


# ----------------------------------------------------------------------------------------
# Two-date inputs shared by the VHR change models
# ----------------------------------------------------------------------------------------

def setup_change_inputs(model: ChangeModel, modality: str, optical_channels: int, sar_channels: int,
                        outputs: Sequence[str] = ("change",)) -> int:
    """Validate the modality/band arguments of a two-date change model and declare its inputs.

    Sets ``model.modality``, ``model.input_keys`` (t1 keys, then t2 keys), ``model.channels`` and
    ``model.output_keys``.

    Returns:
        The number of channels of **one date** (e.g. 3 for RGB; an early-fusion network stacks
        twice that).
    """
    model.modality = check_modality(modality, model.name)
    check_channels(optical_channels, "optical_channels", model.name)
    check_channels(sar_channels, "sar_channels", model.name)
    per = {"sar": sar_channels, "optical": optical_channels}
    channels = {k: per[k.split("_")[0]] for d in ("t1", "t2") for k in modality_keys(modality, d)}
    model._set_inputs(channels, list(outputs))
    return sum(per[k.split("_")[0]] for k in modality_keys(modality, "t1"))


def read_dates(model: ChangeModel, batch: Mapping[str, Tensor]) -> tuple[Tensor, Tensor]:
    """The two dates of ``model.modality`` from the batch: ((B, C, H, W), (B, C, H, W))."""
    t1 = model.read(batch, modality_keys(model.modality, "t1"))
    t2 = model.read(batch, modality_keys(model.modality, "t2"))
    if t1.shape != t2.shape:
        raise ConfigError(f"model {model.name!r}: the two dates differ in shape: {tuple(t1.shape)} and "
                          f"{tuple(t2.shape)}")
    return t1, t2


#: VGG16's convolutional stages (Simonyan & Zisserman 2015): (3x3 convs per stage, width).
VGG16_STAGES = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def vgg_stage(in_ch: int, out_ch: int, n: int, batch_norm: bool = True) -> nn.Sequential:
    """``n`` 3x3 conv(-BN)-ReLU layers of a VGG stage: (B, in_ch, H, W) -> (B, out_ch, H, W).

    ``batch_norm=True``: conv without bias + BN (VGG16-BN); False: conv with bias (plain VGG16).
    """
    layers: list[nn.Module] = []
    for i in range(n):
        c_in = in_ch if i == 0 else out_ch
        if batch_norm:
            layers.append(conv_bn_relu(c_in, out_ch, 3))
        else:
            layers += [nn.Conv2d(c_in, out_ch, 3, padding=1), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers)
