"""Names visible where a decorator or descriptor was written, for resolving annotations later."""

from __future__ import annotations

import sys
import types
from typing import Any


def caller_namespace(depth: int) -> dict[str, Any]:
    """The locals of the frame ``depth`` levels above the caller, merged with a few more above it.

    ``typing.get_type_hints`` needs them for string annotations (or ``from __future__
    import annotations``) that name classes defined inside a function, such as a test:
    the innermost definition of a name wins.
    """
    namespace: dict[str, Any] = {}
    frame: types.FrameType | None = sys._getframe(depth + 1)
    for _ in range(6):
        if frame is None:
            break
        for key, value in frame.f_locals.items():
            namespace.setdefault(key, value)
        frame = frame.f_back
    return namespace
