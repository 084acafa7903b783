"""Model registry: ``create_model(name)``, ``list_models()``, ``load_model(name_or_file)``.

Needs the ``train`` extra (PyTorch). Inference without PyTorch goes through :mod:`ferkit.runtime.classifier`.
"""

from __future__ import annotations

from collections.abc import Callable


from torch import nn

from ferkit.models.faceres import faceres
from ferkit.models.resnet import resnet_m, resnet_s
from ferkit.models.seed import SeedNet
from ferkit.models.vgg import vgg_l, vgg_m, vgg_s

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str, constructor: Callable[..., nn.Module]) -> None:
    if name in _REGISTRY:
        raise ValueError(f"model {name!r} is already registered")
    _REGISTRY[name] = constructor


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    """A freshly initialised model of a registered family.

    >>> sum(p.numel() for p in create_model("seed").parameters())
    11911979
    """
    try:
        constructor = _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None
    return constructor(**kwargs)


def linear(num_classes: int = 7, in_channels: int = 1) -> nn.Module:
    """The simplest baseline: one linear layer on the 48x48 pixels (no BatchNorm, no dropout: deterministic
    steps, which the data-parallel tests rely on)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(in_channels * 48 * 48, num_classes))


register_model("linear", linear)
register_model("seed", SeedNet)
register_model("vgg-s", vgg_s)
register_model("vgg-m", vgg_m)
register_model("vgg-l", vgg_l)
register_model("resnet-s", resnet_s)
register_model("resnet-m", resnet_m)
register_model("faceres", faceres)

# What a family takes as input unless it says otherwise (``input_spec`` on its class): FER2013's 48x48 grey faces.
GREY48 = {"size": 48, "channels": 1}


def input_spec(name: str) -> dict:
    """The input a registered family is built for: ``{"size": S, "channels": 1 or 3}`` and, for pretrained
    backbones, the fixed normalisation (``mean``, ``std`` of pixels scaled to 0..1) their weights expect."""
    model = create_model(name)
    return dict(getattr(model, "input_spec", GREY48))


def model_tensors(model: nn.Module, dtype=None) -> dict:
    """The state dict as contiguous numpy arrays (optionally cast, e.g. to float16 for shipping)."""
    out = {}
    for key, value in model.state_dict().items():
        t = value.detach().cpu().contiguous()
        if dtype is not None and t.is_floating_point():
            t = t.to(dtype)
        out[key] = t.numpy()
    return out


def load_tensors_into(model: nn.Module, tensors: dict, *, backbone_only: bool = False) -> nn.Module:
    """Load ``tensors`` (name -> array) into ``model``; every key must match. ``backbone_only``: a pretrained
    backbone (``weights/pretrained/``) that has no expression head: the head keeps its fresh initialisation, and
    any other missing or unexpected key raises ValueError."""
    import torch

    state = {k: torch.from_numpy(v.copy()).float() for k, v in tensors.items()}
    if not backbone_only:
        model.load_state_dict(state, strict=True)
        return model
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if not k.startswith("head.")]
    if missing or result.unexpected_keys:
        raise ValueError(f"pretrained weights do not fit the model: missing {missing}, unexpected "
                         f"{result.unexpected_keys}")
    return model


def load_model(name_or_path: str | None = None) -> nn.Module:
    """A trained model in eval mode: a shipped name (default: the default model) or a .safetensors file.

    The metadata (labels, normalisation, command, accuracy) is at ``model.ferkit_meta``. No pickle.

    >>> model = load_model("seed")        # doctest: +SKIP
    >>> model.ferkit_meta["labels"][3]    # doctest: +SKIP
    'happy'
    """
    from ferkit.weights import load_tensors, read_metadata, resolve

    path = resolve(name_or_path)
    meta = read_metadata(path)
    model = create_model(meta["arch"])
    load_tensors_into(model, load_tensors(path))
    model.ferkit_meta = meta
    return model.eval()
