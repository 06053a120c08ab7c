"""A fake model adapter and prompt sets for the pipeline tests (no model, no files).

States are deterministic functions of the text, so two runs give the same numbers.
Prompt texts steer failures: ``RAISE`` makes generation raise, ``EMPTY`` yields no
response tokens, ``NAN`` puts NaN in the states, a prompt of more than
``FakeAdapter.context`` words is too long. ``kill_on=k`` SIGKILLs the process when
the ``k``-th distinct prompt reaches ``kill_in`` (a method name).
"""

from __future__ import annotations

import os
import signal
import zlib
from dataclasses import dataclass, field
from typing import ClassVar

import torch
from PIL import Image

from entprobe.capture import Role
from entprobe.datasets import PromptRecord, PromptSet
from entprobe.errors import DatasetError
from entprobe.models.base import CAPABILITIES, Encoded, Generation, ModelAdapter

N_LAYERS = 3
D_MODEL = 12


def _states(key: str, n: int, *, nan: bool = False) -> torch.Tensor:
    gen = torch.Generator().manual_seed(zlib.crc32(key.encode()))
    x = torch.randn(N_LAYERS + 1, n, D_MODEL, generator=gen)
    if nan:
        x[1, :, 0] = float("nan")
    return x


class _Model(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(2, 2) for _ in range(N_LAYERS))


@dataclass
class FakeAdapter(ModelAdapter):
    name: ClassVar[str] = "fake"
    description: ClassVar[str] = "test double"
    capabilities: ClassVar[frozenset[str]] = frozenset(CAPABILITIES)
    layer_paths: ClassVar[tuple[str, ...]] = ("layers",)
    context: ClassVar[int] = 40

    model: torch.nn.Module = field(default_factory=_Model)
    processor: object = None
    source: str = "fake/model"
    kill_on: int | None = None
    kill_in: str = "generate_text"
    seen: list[str] = field(default_factory=list)
    calls: dict[str, int] = field(default_factory=dict)

    @classmethod
    def load_from(cls, source, options):
        return cls(source=source)

    @property
    def max_context(self) -> int:
        return self.context

    def _enter(self, method: str, key: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if key not in self.seen:
            self.seen.append(key)
        if self.kill_on is not None and method == self.kill_in and len(self.seen) >= self.kill_on:
            os.kill(os.getpid(), signal.SIGKILL)

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def _prompt(self, text: str, n_image: int = 0, key: str = "") -> Encoded:
        words = text.split()
        roles = [Role.SPECIAL] + [Role.IMAGE] * n_image + [Role.TEXT] * len(words) + [Role.SPECIAL]
        return Encoded(_states("p:" + key + text, len(roles), nan="NAN" in text), roles)

    def encode_text(self, text: str) -> Encoded:
        self._enter("encode_text", text)
        return self._prompt(text)

    def encode_image(self, image, question: str = "") -> Encoded:
        self._enter("encode_image", question)
        return self._prompt(question, n_image=5, key=str(image.getpixel((0, 0))))

    def _generate(self, prompt: Encoded, text: str, role: Role, n: int) -> Generation:
        if "RAISE" in text:
            raise RuntimeError("the fake model refuses")
        if "EMPTY" in text:
            n = 0
        response = _states("r:" + role.value + text, n)
        states = torch.cat([prompt.states, response], dim=1)
        roles = list(prompt.roles) + [role] * n
        return Generation(Encoded(states, roles), prompt.n_tokens, torch.arange(n))

    def text_generation(self, request, keep_generation_states=False):
        text, image = request.text, request.image
        self._enter("generate_text", text)
        key = "" if image is None else str(image.getpixel((0, 0)))
        prompt = self._prompt(text, n_image=0 if image is None else 5, key=key)
        gen = self._generate(prompt, text, Role.GENERATED_TEXT, 4 + len(text) % 3)
        gen.text = "generated " + text[:10]
        return gen

    def image_generation(self, request, keep_generation_states=False):
        text = request.text
        self._enter("generate_image", text)
        gen = self._generate(self._prompt(text), text, Role.GENERATED_IMAGE, 6)
        gen.image = Image.new("RGB", (4, 4), (len(text) % 256, 0, 0))
        return gen


@dataclass
class FakeImage:
    colour: int
    broken: bool = False

    def open(self, mode="RGB"):
        if self.broken:
            raise DatasetError("cannot decode image (fake)")
        return Image.new("RGB", (4, 4), (self.colour, 0, 0))

    def describe(self) -> str:
        return f"fake image {self.colour}"


TEXTS = [
    "a red cube left of a blue sphere",
    "three cats on a sofa",
    "a lighthouse at dusk with fog",
    "two dogs and one ball",
    "a glass of water on a wooden table",
    "an old map with a compass",
    "a bicycle leaning on a wall",
    "five apples in a bowl",
]


def text_set(texts=TEXTS, name: str = "fake-text") -> PromptSet:
    records = [
        PromptRecord(
            id=f"t{i}",
            dataset=name,
            modality="text",
            text=t,
            category=["Composition", "Deductive"][i % 2],
            subcategory=f"C-{i % 3}",
        )
        for i, t in enumerate(texts)
    ]
    return PromptSet(name=name, spec=f"fake:{name}", records=records)


def image_set(n: int = 4, name: str = "fake-image", broken: tuple[int, ...] = ()) -> PromptSet:
    records = [
        PromptRecord(
            id=f"i{i}",
            dataset=name,
            modality="image",
            text=f"what is in picture {i}?",
            category="Attribute",
            image_ref=FakeImage(10 * i, broken=i in broken),
        )
        for i in range(n)
    ]
    return PromptSet(name=name, spec=f"fake:{name}", records=records)
