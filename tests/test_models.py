import pytest
import torch

from ferkit.models import create_model, list_models
from ferkit.models.layers import LocallyConnected2d, locally_connected_reference
from ferkit.models.summary import summarize

# The paper's appendix: parameters per layer, in order, and the output shapes (H, W, C).
APPENDIX_PARAMS = [1040, 40040, 40040, 0, 60060, 90060, 90060, 0, 5410000, 5766400, 0, 409664, 0, 4160, 0, 455]
APPENDIX_SHAPES = [(48, 48, 40)] * 3 + [(24, 24, 40)] + [(24, 24, 60)] * 3 + [(12, 12, 60), (10, 10, 100),
                                                                                (8, 8, 100), (6400,)] + [(64,)] * 4 + [(7,)]


def test_seed_matches_the_papers_table():
    rows = summarize(create_model("seed"))
    assert [r.params for r in rows] == APPENDIX_PARAMS
    assert [r.output_shape for r in rows] == APPENDIX_SHAPES
    assert sum(r.params for r in rows) == 11_911_979


def test_registry():
    assert "seed" in list_models()
    with pytest.raises(KeyError, match="unknown model 'nope'; available: .*seed"):
        create_model("nope")


@pytest.mark.parametrize("channels_last", [False, True])
def test_locally_connected_matches_per_position_definition(channels_last):
    torch.manual_seed(0)
    layer = LocallyConnected2d(5, 4, (7, 6), 3)
    torch.nn.init.normal_(layer.bias)
    x = torch.randn(3, 5, 7, 6, requires_grad=True)
    xin = x.contiguous(memory_format=torch.channels_last) if channels_last else x
    fast = layer(xin)
    assert fast.shape == (3, 4, 5, 4)
    ref = locally_connected_reference(x, layer)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-5)
    # Gradients agree too: input, weights and bias.
    g = torch.randn_like(ref)
    grads_fast = torch.autograd.grad((fast * g).sum(), (x, layer.weight, layer.bias))
    grads_ref = torch.autograd.grad((ref * g).sum(), (x, layer.weight, layer.bias))
    for a, b in zip(grads_fast, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_weights_are_not_shared_across_positions():
    layer = LocallyConnected2d(1, 1, (4, 4), 3)
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[3].fill_(1.0)  # only the last of the 2x2 output positions sees the input
    out = layer(torch.ones(1, 1, 4, 4))
    assert out.flatten().tolist() == [0.0, 0.0, 0.0, 9.0]


def test_seed_forward_shapes_and_bf16():
    model = create_model("seed").eval()
    x = torch.randn(2, 1, 48, 48).contiguous(memory_format=torch.channels_last)
    assert model(x).shape == (2, 7)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert model(x).shape == (2, 7)


@pytest.mark.parametrize("name", ["vgg-s", "vgg-m", "vgg-l", "resnet-s", "resnet-m"])
def test_families_forward_any_batch_and_size(name):
    net = create_model(name).eval()
    with torch.no_grad():
        assert net(torch.zeros(3, 1, 48, 48)).shape == (3, 7)
        assert net(torch.zeros(1, 1, 40, 40)).shape == (1, 7)  # global pooling: crops work too


def test_resnet_blocks_start_as_identity():
    from ferkit.models.resnet import BasicBlock

    block = BasicBlock(8, 8).eval()
    x = torch.randn(2, 8, 12, 12).relu()
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)
