"""The ``_in_session`` decorator shared by the :class:`~entprobe.store.ResultStore`
method mixins (:mod:`._write`, :mod:`._read`, :mod:`._merge`).

It lives apart from :mod:`._store`, which defines :meth:`ResultStore.session` and
composes the mixins, so that the mixins need not import the module that imports them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._store import ResultStore


def _in_session(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a store method inside :meth:`ResultStore.session`."""
    import functools

    @functools.wraps(method)
    def wrapper(self: ResultStore, *args: Any, **kwargs: Any) -> Any:
        with self.session():
            return method(self, *args, **kwargs)

    return wrapper
