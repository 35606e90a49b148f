"""One error type for input a user can fix, the wrapper that turns it into a one-line message, and
the argument parser every command uses.

Every command-line entry point runs through `cli`, so bad input (missing file, wrong column, unknown
entity...) ends with `error: ...` on stderr and exit code 2, never a traceback; Ctrl-C ends with 130.
Every command builds its parser with `ArgumentParser`, so each long flag is accepted in both spellings
(`--test_filename` and `--test-filename`) while `--help` shows the one the command declares.
"""

from __future__ import annotations

import argparse
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


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, accepting `--a_b` for `--a-b` and the reverse for every long flag.

    The organisers' scripts spell flags with underscores (`--test_filename`), most tools with
    hyphens; a user should not have to remember which command wants which. The other spelling is a
    hidden alias: it parses, and `--help` shows only the declared name.
    """

    def error(self, message: str):  # type: ignore[override]
        """One line, as every other error of the project (argparse prints its usage block first)."""
        self.exit(2, f"error: {message} (usage: {self.prog} --help)\n")

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        for action in self._actions:  # arguments of groups are here too
            for flag in action.option_strings:
                if flag.startswith("--"):
                    name = flag[2:]
                    other = "--" + (name.replace("_", "-") if "_" in name else name.replace("-", "_"))
                    self._option_string_actions.setdefault(other, action)
        return super().parse_known_args(args, namespace)
