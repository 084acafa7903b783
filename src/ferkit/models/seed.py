"""The paper's network ("seed"): three phases, 11,911,979 trainable parameters.

Phase 1: 3 x Conv 5x5, 40 filters, "same", ReLU -> MaxPool 2      (48x48 -> 24x24)
Phase 2: 3 x Conv 5x5, 60 filters, "same", ReLU -> MaxPool 2      (24x24 -> 12x12)
Phase 3: 2 x LocallyConnected 3x3, 100 filters, "valid", ReLU     (12x12 -> 10x10 -> 8x8)
Head:    Flatten 6400 -> Dense 64 ReLU -> Dropout 0.5 -> Dense 64 ReLU -> Dropout 0.5 -> Dense 7

The top-level children are exactly the rows of the paper's appendix table, so ``ferkit summary seed``
can print it; the output is logits (softmax is applied at inference).
"""

from __future__ import annotations


from torch import nn

from ferkit.models.layers import LocallyConnected2d


class ConvReLU(nn.Sequential):
    """Conv 'same' + ReLU: one row of the paper's table, as a Keras Conv2D(activation='relu')."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__(nn.Conv2d(cin, cout, k, padding=k // 2), nn.ReLU(inplace=True))


class LocalReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int, in_size: int, k: int):
        super().__init__(LocallyConnected2d(cin, cout, (in_size, in_size), k), nn.ReLU(inplace=True))


class DenseReLU(nn.Sequential):
    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Linear(cin, cout), nn.ReLU(inplace=True))


class SeedNet(nn.Sequential):
    def __init__(self, num_classes: int = 7, in_channels: int = 1, dropout: float = 0.5):
        super().__init__()
        layers = [
            ("conv1a", ConvReLU(in_channels, 40, 5)), ("conv1b", ConvReLU(40, 40, 5)), ("conv1c", ConvReLU(40, 40, 5)),
            ("pool1", nn.MaxPool2d(2)),
            ("conv2a", ConvReLU(40, 60, 5)), ("conv2b", ConvReLU(60, 60, 5)), ("conv2c", ConvReLU(60, 60, 5)),
            ("pool2", nn.MaxPool2d(2)),
            ("local1", LocalReLU(60, 100, 12, 3)), ("local2", LocalReLU(100, 100, 10, 3)),
            ("flatten", nn.Flatten()),
            ("dense1", DenseReLU(6400, 64)), ("drop1", nn.Dropout(dropout)),
            ("dense2", DenseReLU(64, 64)), ("drop2", nn.Dropout(dropout)),
            ("logits", nn.Linear(64, num_classes)),
        ]
        for name, layer in layers:
            self.add_module(name, layer)
        self._keras_init()

    def _keras_init(self) -> None:
        # Keras defaults: Glorot-uniform kernels, zero biases (the paper trained with them).
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
