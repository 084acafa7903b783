"""Residual networks for 48x48 faces: a 3x3 stem, 4 stages of basic blocks, global average pooling.

The first stage runs at full resolution; each later stage halves it with a stride-2 block
(48 -> 24 -> 12 -> 6), like the VGG family, so the two compare at equal feature-map sizes.
"""

from __future__ import annotations

from torch import nn


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus a shortcut (1x1 conv + BN where the shape changes), then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride=stride, bias=False), nn.BatchNorm2d(cout))
        nn.init.zeros_(self.body[-1].weight)  # each block starts as the identity: trains fast from step one
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), blocks: int = 2, num_classes: int = 7,
                 in_channels: int = 1, dropout: float = 0.2):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False),
                                  nn.BatchNorm2d(widths[0]), nn.ReLU(inplace=True))
        stages, cin = [], widths[0]
        for i, width in enumerate(widths):
            stages.append(nn.Sequential(*[BasicBlock(cin if j == 0 else width, width, 2 if (i > 0 and j == 0) else 1)
                                          for j in range(blocks)]))
            cin = width
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes))
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        for block in self.modules():
            if isinstance(block, BasicBlock):
                nn.init.zeros_(block.body[-1].weight)

    def forward(self, x):
        return self.head(self.features(self.stem(x)))


def resnet_s(**kw) -> ResNet:
    return ResNet((32, 64, 128, 256), **kw)


def resnet_m(**kw) -> ResNet:
    return ResNet((48, 96, 192, 384), **kw)
