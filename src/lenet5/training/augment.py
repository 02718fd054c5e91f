"""Augmentations: hooks that transform each training batch (``Callback.on_batch``).

An augmentation is a :class:`~lenet5.training.callbacks.Callback` registered by name with
a factory ``fn(generator, **options) -> Callback``; the loop hands it a ``torch.Generator``
of its own, seeded from the run's seed and the name, and the resume file carries the
generator's state over (``state_dict``), so a resumed run draws exactly what the
uninterrupted one would have. A run turns one on with ``--augment NAME[:KEY=VALUE,...]``
or ``TrainConfig(augment={"NAME": {...options}})`` (a recipe can name it too)::

    @register_augmentation("flip")
    class Flip(Augmentation):
        def __init__(self, generator, p=0.5):
            super().__init__(generator)
            self.p = p

        def on_batch(self, loop, x, y):
            flip = torch.rand(len(x), generator=self.generator) < self.p
            return torch.where(flip[:, None, None, None], x.flip(-1), x), y

``x`` is the model's input (after padding and normalization, on the device), ``y`` the
labels; return tensors of the same layout. ``--distort`` is the paper's augmentation,
registered as ``distort``; ``writing`` draws the ways people's writing differs from MNIST
(rotation, slant, elastic distortion, stroke thickness, blur, low resolution, faint ink:
``data/augment.py``), the ``reader`` model's recipe.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import torch

from ..data.augment import Augment, augment_input
from ..data.distort import Distortion, distort
from ..errors import Lenet5Error
from ..registry import Registry
from .callbacks import Callback

AUGMENTATIONS: Registry[Callable[..., Callback]] = Registry("augmentation")
register_augmentation = AUGMENTATIONS.register


def list_augmentations() -> list[str]:
    return AUGMENTATIONS.names()


class Augmentation(Callback):
    """An ``on_batch`` hook drawing from its own generator, which resume carries over."""

    def __init__(self, generator: torch.Generator):
        self.generator = generator

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])


@register_augmentation("distort")
class Distort(Augmentation):
    """Random planar affine distortions of a share of each batch (LeCun et al. 1998, V.B;
    see ``data/distort.py``): ``fraction`` of the images, the paper's ranges by default."""

    def __init__(self, generator: torch.Generator, fraction: float = Distortion.fraction,
                 **ranges: float):
        super().__init__(generator)
        if not 0 <= float(fraction) <= 1:
            raise Lenet5Error(f"--distort takes the share of images to distort, between 0 and 1, "
                              f"not {fraction}")
        try:
            self.distortion = Distortion(fraction=float(fraction), **ranges)
        except TypeError as e:
            raise Lenet5Error(f"augmentation 'distort': {e}") from None

    def on_batch(self, loop, x, y):
        return distort(x, self.generator, self.distortion), y


def writing_ranges(options: dict[str, Any]) -> Augment:
    """The ranges of the ``writing`` augmentation given as its options, checked."""
    try:
        ranges = Augment(**options)
    except TypeError as e:
        raise Lenet5Error(f"augmentation 'writing': {e}") from None
    if not 0 <= ranges.clean <= 1:
        raise Lenet5Error(f"augmentation 'writing': clean is the share of images left as "
                          f"they are, between 0 and 1, not {ranges.clean}")
    return ranges


@register_augmentation("writing")
class Writing(Augmentation):
    """People's writing, drawn per image on the whole batch (``data/augment.py``): every
    option is a range of :class:`~lenet5.data.augment.Augment` (0 switches that part off),
    its defaults the ``reader`` model's, chosen on a validation split (docs/reader.md)."""

    def __init__(self, generator: torch.Generator, **ranges: float):
        super().__init__(generator)
        self.ranges = writing_ranges(ranges)

    def on_batch(self, loop, x, y):
        pre = loop.preprocess
        return augment_input(x, self.generator, self.ranges, pre.mean, pre.std), y


def seed_for(name: str, seed: int) -> int:
    """The seed of augmentation ``name``'s generator in a run seeded ``seed``: its own
    stream, the same in every run with that seed (``distort``: seed + 2, as it always was)."""
    if name == "distort":
        return seed + 2
    return (seed * 1_000_003 + zlib.crc32(name.encode())) % 2**63


def build_augmentations(augment: dict[str, dict[str, Any]], seed: int) -> list[Callback]:
    """The hooks for ``TrainConfig.augment`` (name -> options), each named by its name."""
    hooks = []
    for name, options in augment.items():
        factory = AUGMENTATIONS.get(name)
        if not isinstance(options or {}, dict):
            raise Lenet5Error(f"augmentation {name!r}: its options are KEY=VALUE pairs, not {options!r}")
        generator = torch.Generator().manual_seed(seed_for(name, seed))
        try:
            hook = factory(generator, **(options or {}))
        except TypeError as e:
            raise Lenet5Error(f"augmentation {name!r}: {e}") from None
        hook.name = name
        hooks.append(hook)
    return hooks


def parse_augment(spec: str) -> tuple[str, dict[str, Any]]:
    """``--augment NAME[:KEY=VALUE,...]`` -> (name, options); values are numbers where they
    read as numbers."""
    name, _, rest = spec.partition(":")
    options: dict[str, Any] = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise Lenet5Error(f"--augment {spec}: options go as NAME:KEY=VALUE,KEY=VALUE")
        try:
            options[key] = int(value)
        except ValueError:
            try:
                options[key] = float(value)
            except ValueError:
                options[key] = value
    AUGMENTATIONS.get(name)  # unknown -> the list of known ones
    return name, options
