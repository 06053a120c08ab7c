"""``FrozenBatchNorm2d`` is only named in timm's norm-layer tables; a placeholder suffices."""

from .._shell import missing, placeholder

FrozenBatchNorm2d = placeholder("torchvision.ops.misc.FrozenBatchNorm2d")
__getattr__ = missing("torchvision.ops.misc")
