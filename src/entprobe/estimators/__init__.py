"""Matrix-based Rényi entropy estimators on token states (pure numerics).

Public API:

- :func:`matrix_entropy` -- entropy of one set of token states (prompt level).
- :func:`conditional_entropy` -- the proxy ``H(prompt ⊕ response) − H(prompt)``.
- :func:`linear_gram`, :func:`matrix_entropy_from_gram`,
  :func:`conditional_entropy_from_gram` -- the same estimators from the linear
  Gram (centred or not) ``X Xᵀ``, which is all they depend on (stored by ``--save-grams``).
- :func:`subsample_indices` -- the reproducible draws of
  ``normalization="subsample"``.

Everything runs in float64 on the input's device, batched over leading axes
(usually layers) with one eigen-solver call per step for all of them.
"""

from ._checks import EntropyBounds
from ._chunks import default_max_memory, parse_memory
from ._conditional import conditional_entropy, conditional_entropy_from_gram, subsample_indices
from ._entropy import linear_gram, matrix_entropy, matrix_entropy_from_gram

__all__ = [
    "EntropyBounds",
    "default_max_memory",
    "parse_memory",
    "conditional_entropy",
    "conditional_entropy_from_gram",
    "linear_gram",
    "matrix_entropy",
    "matrix_entropy_from_gram",
    "subsample_indices",
]
