"""VGG-style networks with BatchNorm for 48x48 faces: 4 stages of (conv3x3-BN-ReLU) x depth + max-pool.

Global average pooling and one linear layer make the head, so the parameter count stays small and
the net accepts other input sizes (e.g. 40x40 crops at train time, 48x48 at test time).
"""

from __future__ import annotations

from torch import nn


class ConvBN(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class VGGNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), depth: int = 2, num_classes: int = 7,
                 in_channels: int = 1, dropout: float = 0.2):
        super().__init__()
        stages, cin = [], in_channels
        for i, width in enumerate(widths):
            blocks = [ConvBN(cin if j == 0 else width, width) for j in range(depth)]
            pool = [nn.MaxPool2d(2)] if i < len(widths) - 1 else []
            stages.append(nn.Sequential(*blocks, *pool))
            cin = width
        self.features = nn.Sequential(*stages)  # 48 -> 24 -> 12 -> 6 (last stage unpooled)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        return self.head(self.features(x))  # (B, 7) logits


def vgg_s(**kw) -> VGGNet:
    return VGGNet((32, 64, 128, 256), **kw)


def vgg_m(**kw) -> VGGNet:
    return VGGNet((48, 96, 192, 384), **kw)


def vgg_l(**kw) -> VGGNet:
    return VGGNet((64, 128, 256, 512), **kw)
