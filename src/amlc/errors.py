"""One error type for input a user can fix, and the wrapper that turns it into a one-line message.

Every command-line entry point runs through `cli`, so bad input (missing file, wrong column, unknown
entity...) ends with `error: ...` on stderr and exit code 2, never a traceback; Ctrl-C ends with 130.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence


class InputError(Exception):
    """Input the user can fix (a path, a column, a value). The message says what and where."""


def cli(main: Callable[[Sequence[str] | None], int | None], argv: Sequence[str] | None = None) -> int:
    try:
        code = main(argv)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `... | head` closed the pipe: not an error of ours
        return 0
    return int(code or 0)
