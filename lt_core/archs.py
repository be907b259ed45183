"""Architectures: one frozen record per network, holding everything the network means, and their registry.

An :class:`Arch` says which dataset(s) the network fits (the first is its default), its input shape,
its layers in order (convolutions first, then the dense head; each a :class:`Layer` with its weight
shape, padding and whether a 2x2 max-pool follows), the paper's training schedule (Adam learning
rate, epochs), the per-round prune fraction of each layer kind, the learned-supermask default
(epochs), the dashboard's quick schedule (:class:`QuickSchedule`), the paper's Table 1 row where the
paper has one, a display label, and the hidden layers' nonlinearity (``activation``, one of
:data:`ACTIVATIONS`; ReLU in every network of the paper). A method that trains the same layers with
another nonlinearity works on :meth:`Arch.with_activation`'s copy of the record. Nothing else in
lt_core keeps a per-network table: configs, the CLI, the experiments and the dashboard all read
these records through :data:`ARCHS` / :func:`get_arch`.

Declaring a network takes one builder call (:func:`fc_arch`, :func:`vgg_arch`) and
:func:`register_arch`::

    register_arch(fc_arch("fc50", [50, 10], dataset="mnist", lr=1.2e-3, epochs=20))

A record checks itself when built: the layers must chain (each layer's input width is the previous
layer's output: channels for convolutions, the flattened feature map for the first dense layer), the
last layer is the single ``output`` layer and has one unit per class of every dataset the network
fits. A mismatch raises :class:`~lt_core.errors.ConfigError` naming the layer and both widths.

The paper's networks (protocol section 1): FC 300-100-10 on MNIST; Conv2, Conv4, Conv6 on CIFAR-10
(3x3 convolutions with 'same' padding, 2x2 max-pool after every second convolution, dense head
256-256-10). Conv8, the network of the follow-up supermask papers, extends the same family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import List, Mapping, Optional, Sequence, Tuple, Union

from .data import DATASET_INFO
from .errors import ConfigError
from .registry import Registry

KINDS = ("conv", "fc", "output")  # a convolution, a hidden dense layer, the output layer
ACTIVATIONS = ("relu", "elu")  # the hidden layers' nonlinearity: max(0, x); x if x > 0 else exp(x) - 1
TABLE1_COLUMNS = ("mask_init", "mask_signed_constant", "learned_init", "learned_signed_constant", "learned_dwr",
                  "dense")  # one-shot masks, learned masks (init, signed constants, DWR), trained dense; in %


@dataclass(frozen=True)
class Layer:
    """One weight layer. ``shape`` is the weight in torch layout: ``(out, in)`` or ``(out, in, k, k)``."""

    name: str
    kind: str  # one of KINDS
    shape: Tuple[int, ...]
    pool_after: bool = False  # a 2x2 max-pool (stride 2) follows this convolution
    padding: int = 0  # zero padding on each side of a convolution's input

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def fans(self) -> Tuple[int, int]:
        receptive = math.prod(self.shape[2:]) if len(self.shape) > 2 else 1
        return self.shape[1] * receptive, self.shape[0] * receptive


@dataclass(frozen=True)
class QuickSchedule:
    """The dashboard's Quick preset: a curve within about a minute on a laptop CPU."""

    iterations: int  # training iterations of a dense or lottery run
    eval_every: int
    learn_epochs: int  # epochs of a learned supermask

    def train_fields(self) -> dict:
        """TrainConfig fields; the training-set evaluation is skipped (it changes no reported number)."""
        return {"iterations": self.iterations, "eval_every": self.eval_every, "eval_train": False}

    def learn_fields(self) -> dict:
        """LearnConfig fields."""
        return {"epochs": self.learn_epochs}


@dataclass(frozen=True, eq=False)
class Arch:
    """Everything one network means (see the module docstring). Compared and hashed by identity."""

    name: str
    datasets: Tuple[str, ...]  # the datasets it fits; the first is its default
    input_shape: Tuple[int, int, int]  # (C, H, W)
    layers: Tuple[Layer, ...]
    lr: float  # Adam learning rate of dense and lottery training
    epochs: int  # training epochs of dense and lottery training
    prune_fractions: Mapping[str, float]  # per layer kind: fraction of the remaining weights pruned per round
    learn_epochs: int  # learned-supermask epochs
    quick: QuickSchedule
    paper_table1: Optional[Mapping[str, float]] = None  # the paper's Table 1 row (TABLE1_COLUMNS), if it has one
    label: str = ""  # display name, e.g. "Conv2 (CIFAR-10)"; empty means the name
    description: str = field(default="", repr=False)
    activation: str = "relu"  # the hidden layers' nonlinearity, one of ACTIVATIONS

    def __post_init__(self) -> None:
        if self.activation not in ACTIVATIONS:
            self._fail(f"activation: {self.activation!r} is not one of {', '.join(ACTIVATIONS)}")
        missing = [kind for kind in self.kinds if kind not in self.prune_fractions]
        if missing:
            self._fail(f"prune_fractions lacks the layer kind(s) {', '.join(missing)}")
        # normalised, read-only forms; kinds without layers prune nothing
        fractions = {kind: 0.0 for kind in KINDS}
        fractions.update(self.prune_fractions)
        table1 = None if self.paper_table1 is None else MappingProxyType(dict(self.paper_table1))
        for name, value in (("datasets", tuple(self.datasets)), ("input_shape", tuple(self.input_shape)),
                            ("layers", tuple(self.layers)), ("label", self.label or self.name),
                            ("prune_fractions", MappingProxyType(fractions)), ("paper_table1", table1)):
            object.__setattr__(self, name, value)
        self._check()

    @property
    def dataset(self) -> str:
        """The default dataset."""
        return self.datasets[0]

    @property
    def kinds(self) -> Tuple[str, ...]:
        return tuple(dict.fromkeys(layer.kind for layer in self.layers))

    @property
    def layer_names(self) -> List[str]:
        return [layer.name for layer in self.layers]

    @property
    def fully_connected(self) -> bool:
        """No convolutional layer: every layer a dense matmul."""
        return "conv" not in self.kinds

    @property
    def num_weights(self) -> int:
        """Weights of all layers, biases excluded (the paper's counts)."""
        return sum(layer.numel for layer in self.layers)

    def with_activation(self, activation: str) -> "Arch":
        """This network with ``activation`` after its hidden layers (itself where it already has it):
        the same name, layers, initialisation and schedule."""
        return self if activation == self.activation else replace(self, activation=activation)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise ConfigError(f"layer: {self.name} has no layer {name!r}; layers: {', '.join(self.layer_names)}")

    def dataset_for(self, requested: Optional[str]) -> str:
        """The dataset a run uses: ``requested``, or the default when None; one the network fits."""
        name = requested or self.dataset
        if name not in self.datasets:
            raise ConfigError(f"DataConfig.dataset: {name!r} does not fit arch {self.name!r}; allowed values: "
                              f"{', '.join(self.datasets)}")
        return name

    # -- checks ---------------------------------------------------------------------------------
    def _fail(self, what: str) -> None:
        raise ConfigError(f"arch {self.name!r}: {what}")

    def _check(self) -> None:
        if not self.datasets:
            self._fail("give at least one dataset")
        for name in self.datasets:
            if name not in DATASET_INFO:
                self._fail(f"unknown dataset {name!r}; allowed values: {', '.join(DATASET_INFO)}")
            if DATASET_INFO[name].input_shape != self.input_shape:
                self._fail(f"input shape {self.input_shape} differs from {name}'s {DATASET_INFO[name].input_shape}")
        if not self.layers:
            self._fail("give at least one layer")
        names = self.layer_names
        if len(set(names)) != len(names):
            self._fail(f"layer names repeat: {', '.join(names)}")
        for layer in self.layers:
            if layer.kind not in KINDS:
                self._fail(f"layer {layer.name!r} has kind {layer.kind!r}; allowed kinds: {', '.join(KINDS)}")
        self._check_chain()
        classes = {DATASET_INFO[name].classes for name in self.datasets}
        out = self.layers[-1].shape[0]
        if classes != {out}:
            self._fail(f"the output layer has {out} units but {', '.join(self.datasets)} has "
                       f"{', '.join(map(str, sorted(classes)))} classes")
        for kind, value in self.prune_fractions.items():
            if kind not in KINDS or not 0.0 <= value < 1.0:
                self._fail(f"prune_fractions[{kind!r}] = {value!r}; give a fraction in [0, 1) for each of "
                           f"{', '.join(KINDS)}")
        if not self.lr > 0 or self.epochs < 1 or self.learn_epochs < 1:
            self._fail(f"lr must be > 0, epochs and learn_epochs >= 1 (got {self.lr}, {self.epochs}, "
                       f"{self.learn_epochs})")
        unknown = sorted(set(self.paper_table1 or {}) - set(TABLE1_COLUMNS))
        if unknown:
            self._fail(f"paper_table1 has unknown column(s) {', '.join(unknown)}; allowed: {', '.join(TABLE1_COLUMNS)}")

    def _check_chain(self) -> None:
        """Each layer's input width is what the layer before it gives."""
        c, h, w = self.input_shape
        given, source = c, "the input"
        dense = False
        for i, layer in enumerate(self.layers):
            where = f"layer {layer.name!r}"
            if layer.kind == "conv":
                if dense:
                    self._fail(f"{where} is a convolution after a dense layer; convolutions come first")
                if len(layer.shape) != 4 or layer.shape[2] != layer.shape[3]:
                    self._fail(f"{where}: a convolution's weight shape is (out, in, k, k), got {layer.shape}")
                if layer.shape[1] != given:
                    self._fail(f"{where} takes {layer.shape[1]} input channels but {source} gives {given}")
                h = h + 2 * layer.padding - layer.shape[2] + 1
                w = w + 2 * layer.padding - layer.shape[3] + 1
                if layer.pool_after:
                    h, w = h // 2, w // 2
                if h < 1 or w < 1:
                    self._fail(f"{where}: the feature map shrinks to nothing ({h}x{w})")
                c = given = layer.shape[0]
                source = f"layer {layer.name!r}"
                continue
            if len(layer.shape) != 2 or layer.pool_after or layer.padding:
                self._fail(f"{where}: a dense layer has a weight shape (out, in), no pooling and no padding")
            if not dense:
                given = c * h * w
                source = f"{source} ({c}x{h}x{w} flattened)" if source != "the input" else source
            if layer.shape[1] != given:
                self._fail(f"{where} takes {layer.shape[1]} inputs but {source} gives {given}")
            if (layer.kind == "output") != (i == len(self.layers) - 1):
                self._fail(f"{where}: the last layer, and only it, is the 'output' layer")
            dense, given, source = True, layer.shape[0], f"layer {layer.name!r}"
        if not dense:
            self._fail("end with a dense 'output' layer")


# -- builders -----------------------------------------------------------------------------------

def _datasets(dataset: Union[str, Sequence[str]]) -> Tuple[str, ...]:
    return (dataset,) if isinstance(dataset, str) else tuple(dataset)


def _dense_layers(arch: str, widths: Sequence[int], first_in: int) -> List[Layer]:
    """Dense layers ``fc1``, ``fc2``, ... of the given widths, the last the output, fed ``first_in`` features."""
    layers, given = [], first_in
    for i, width in enumerate(widths):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ConfigError(f"arch {arch!r}: dense widths hold {width!r}; give unit counts (ints >= 1)")
        layers.append(Layer(f"fc{i + 1}", "output" if i == len(widths) - 1 else "fc", (width, given)))
        given = width
    return layers


def _input_shape(datasets: Tuple[str, ...]) -> Tuple[int, int, int]:
    """The default dataset's image shape (an unknown dataset is reported by the Arch check)."""
    info = DATASET_INFO.get(datasets[0]) if datasets else None
    return info.input_shape if info else (0, 0, 0)


def fc_arch(name: str, widths: Sequence[int], *, dataset: Union[str, Sequence[str]] = "mnist", lr: float,
            epochs: int, prune_fractions: Optional[Mapping[str, float]] = None, learn_epochs: int = 2000,
            quick: QuickSchedule = QuickSchedule(300, 50, 10), paper_table1: Optional[Mapping[str, float]] = None,
            label: str = "", description: str = "") -> Arch:
    """A fully connected network from its layer widths, the last being the output: ``[300, 100, 10]``.

    Layers are named ``fc1``, ``fc2``, ...; the input is the dataset's image, flattened. Defaults
    follow the paper's FC network: prune 20% of hidden and 10% of output weights per round, learned
    masks for 2000 epochs, a 300-iteration quick schedule.
    """
    datasets = _datasets(dataset)
    shape = _input_shape(datasets)
    layers = _dense_layers(name, widths, math.prod(shape))
    return Arch(name, datasets, shape, tuple(layers), lr, epochs,
                dict(prune_fractions or {"fc": 0.2, "output": 0.1}), learn_epochs, quick, paper_table1, label,
                description)


def vgg_arch(name: str, widths: Sequence[Union[int, str]], *, fc: Sequence[int],
             dataset: Union[str, Sequence[str]] = "cifar10", kernel: int = 3, lr: float, epochs: int,
             prune_fractions: Optional[Mapping[str, float]] = None, learn_epochs: int = 100,
             quick: QuickSchedule = QuickSchedule(200, 50, 2), paper_table1: Optional[Mapping[str, float]] = None,
             label: str = "", description: str = "") -> Arch:
    """A VGG-style network: ``widths`` lists convolutions by output channels and ``"P"`` for a 2x2 max-pool,
    e.g. ``[64, 64, "P", 128, 128, "P"]``; ``fc`` the dense head's widths, e.g. ``[256, 256, 10]``.

    Convolutions are ``kernel`` x ``kernel`` with 'same' padding (``kernel // 2``; ``kernel`` odd),
    named ``conv1``, ``conv2``, ...; the dense layers ``fc1``, ``fc2``, .... Defaults follow the
    paper's Conv2/Conv4: prune 10% of conv, 20% of hidden dense and 10% of output weights per round,
    learned masks for 100 epochs, a 200-iteration quick schedule.
    """
    datasets = _datasets(dataset)
    shape = _input_shape(datasets)
    if kernel < 1 or kernel % 2 == 0:
        raise ConfigError(f"arch {name!r}: kernel {kernel!r} must be odd for 'same' padding")
    convs: List[Layer] = []
    c_in, h, w = shape
    for item in widths:
        if item == "P":
            if not convs or convs[-1].pool_after:
                raise ConfigError(f"arch {name!r}: each 'P' in widths must follow a convolution")
            last = convs[-1]
            convs[-1] = Layer(last.name, last.kind, last.shape, True, last.padding)
            h, w = h // 2, w // 2
            continue
        if isinstance(item, bool) or not isinstance(item, int) or item < 1:
            raise ConfigError(f"arch {name!r}: widths holds {item!r}; give channel counts (ints) and 'P' for a pool")
        convs.append(Layer(f"conv{len(convs) + 1}", "conv", (item, c_in, kernel, kernel), False, kernel // 2))
        c_in = item
    dense = _dense_layers(name, fc, c_in * h * w)
    return Arch(name, datasets, shape, tuple(convs + dense), lr, epochs,
                dict(prune_fractions or {"conv": 0.1, "fc": 0.2, "output": 0.1}), learn_epochs, quick,
                paper_table1, label, description)


# -- the registry -------------------------------------------------------------------------------

ARCHS: Registry[Arch] = Registry("architecture", "arch")


def get_arch(name: str) -> Arch:
    """The registered architecture ``name``; an unknown name raises one ConfigError line."""
    return ARCHS[name]


def register_arch(arch: Arch) -> Arch:
    """Make ``arch`` available everywhere a built-in network is: ``ModelConfig(arch=...)``, the CLI's
    ``--arch``, the dashboard's Network menu, the experiments and the results store.

    ``arch`` is a checked record (build it with :func:`fc_arch`, :func:`vgg_arch` or :class:`Arch`);
    a name already registered raises :class:`~lt_core.errors.ConfigError`. Returns ``arch``.
    """
    if not isinstance(arch, Arch):
        raise ConfigError(f"register_arch: expected an Arch record (see fc_arch, vgg_arch), got {type(arch).__name__}")
    return ARCHS.add(arch.name, arch)


def _table1(*values: float) -> dict:
    return dict(zip(TABLE1_COLUMNS, values))


# The paper's networks (protocol sections 1, 2.2, 3.1 and 8.1). Learned-mask epochs: the original
# README's 2000 for FC; 100 for the conv nets is UNVERIFIED (the repository does not give them).
for _arch in (
    fc_arch("fc", [300, 100, 10], dataset=("mnist", "fashion_mnist"), lr=1.2e-3, epochs=55,
            paper_table1=_table1(79.3, 86.3, 95.3, 96.4, 97.8, 97.7), label="FC 300-100-10 (MNIST)",
            description="LeNet 300-100-10"),
    vgg_arch("conv2", [64, 64, "P"], fc=[256, 256, 10], lr=2e-4, epochs=27,
             paper_table1=_table1(22.3, 37.4, 64.4, 66.3, 65.0, 69.2), label="Conv2 (CIFAR-10)"),
    vgg_arch("conv4", [64, 64, "P", 128, 128, "P"], fc=[256, 256, 10], lr=3e-4, epochs=34,
             paper_table1=_table1(23.7, 39.7, 65.4, 66.2, 71.7, 75.4), label="Conv4 (CIFAR-10)"),
    vgg_arch("conv6", [64, 64, "P", 128, 128, "P", 256, 256, "P"], fc=[256, 256, 10], lr=3e-4, epochs=40,
             prune_fractions={"conv": 0.15, "fc": 0.2, "output": 0.1},
             paper_table1=_table1(24.0, 41.0, 65.3, 65.4, 76.3, 78.3), label="Conv6 (CIFAR-10)"),
    # Conv8 (5,275,840 weights) is not in Zhou et al.; the follow-up supermask papers report on it.
    # Its schedule is UNVERIFIED, chosen paper-style: Conv6's learning rate (3e-4), epochs (40) and
    # prune fractions (conv 15%, hidden dense 20%, output 10%); learned masks for 100 epochs as the
    # other conv nets; the conv nets' quick schedule. No Table 1 row.
    vgg_arch("conv8", [64, 64, "P", 128, 128, "P", 256, 256, "P", 512, 512, "P"], fc=[256, 256, 10], lr=3e-4,
             epochs=40, prune_fractions={"conv": 0.15, "fc": 0.2, "output": 0.1}, label="Conv8 (CIFAR-10)"),
):
    register_arch(_arch)
del _arch
