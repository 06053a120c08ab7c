"""Placeholders for the parts of torchvision the tests never run.

``missing(module_name)`` gives a module ``__getattr__`` that returns, for any other
name, a class which raises on use: importing and subclassing work (timm subclasses
``transforms.ToTensor`` at import time), calling it fails loudly, so nothing silently
runs a fake.
"""

from __future__ import annotations


class StandInError(RuntimeError):
    """A torchvision feature the test stand-in does not provide was used."""


def placeholder(qualname: str) -> type:
    def _refuse(self, *args, **kwargs):
        raise StandInError(f"{qualname} is not provided by entprobe's test stand-in for torchvision")

    return type(qualname.rsplit(".", 1)[-1], (), {"__init__": _refuse, "__call__": _refuse})


def missing(module_name: str):
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return placeholder(f"{module_name}.{name}")

    return __getattr__
