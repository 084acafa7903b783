"""Layers PyTorch does not have."""

from __future__ import annotations

import math

import torch
from torch import nn


class LocallyConnected2d(nn.Module):
    """A 2-D convolution whose weights are not shared: every output position has its own filter bank.

    Keras' ``LocallyConnected2D`` with "valid" padding and stride 1. The k*k shifted views of the input
    are stacked once (a loop over kernel offsets, never over positions), then a single einsum applies
    each position's (C*k*k, O) filter: one batched matmul over the H'*W' positions.

    Shapes: input (B, C, H, W) -> output (B, O, H-k+1, W-k+1).
    Parameters: H'*W'*(C*k*k*O + O), exactly as Keras counts them.
    """

    def __init__(self, in_channels: int, out_channels: int, in_size: tuple[int, int], kernel_size: int):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.out_size = (in_size[0] - kernel_size + 1, in_size[1] - kernel_size + 1)
        oh, ow = self.out_size
        # Keras' kernel layout: (positions, C*k*k, O), with the C*k*k axis channel-major.
        self.weight = nn.Parameter(torch.empty(oh * ow, in_channels * kernel_size * kernel_size, out_channels))
        self.bias = nn.Parameter(torch.zeros(out_channels, oh, ow))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Glorot-uniform with a convolution's fans (Keras' default initialiser, per position).
        k2 = self.kernel_size * self.kernel_size
        bound = math.sqrt(6.0 / (self.in_channels * k2 + self.out_channels * k2))
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.zeros_(self.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        oh, ow = self.out_size
        b = x.shape[0]
        patches = torch.stack([x[:, :, i:i + oh, j:j + ow] for i in range(k) for j in range(k)], dim=2)  # (B, C, k*k, H', W')
        patches = patches.reshape(b, -1, oh * ow)  # (B, C*k*k, L)
        out = torch.einsum("bil,lio->bol", patches, self.weight)  # (B, O, L): one matmul per position
        return out.reshape(b, self.out_channels, oh, ow) + self.bias

    def extra_repr(self) -> str:
        return f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, out_size={self.out_size}"


def locally_connected_reference(x: torch.Tensor, layer: LocallyConnected2d) -> torch.Tensor:
    """The definition, one output position at a time (slow; for tests and benchmarks)."""
    k = layer.kernel_size
    oh, ow = layer.out_size
    out = x.new_empty(x.shape[0], layer.out_channels, oh, ow)
    for i in range(oh):
        for j in range(ow):
            window = x[:, :, i:i + k, j:j + k].reshape(x.shape[0], -1)  # (B, C*k*k), channel-major
            w = layer.weight[i * ow + j]  # (C*k*k, O), same order
            out[:, :, i, j] = window @ w + layer.bias[:, i, j]
    return out
