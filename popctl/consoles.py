"""The one pair of consoles of popctl: results to stdout; progress, warnings and errors to stderr.

A command writes plain results with :meth:`Consoles.result` and messages with :meth:`Consoles.message`;
for tables, colour and progress bars it takes the rich consoles :attr:`Consoles.out` and :attr:`Consoles.err`,
made (and rich imported) only when first used. The streams are bound when the pair is made, so a test that
captures ``sys.stdout`` and ``sys.stderr`` sees everything.
"""

from __future__ import annotations

import sys
from functools import cached_property
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.console import Console


class Consoles:
    """stdout for results, stderr for everything else (by default the process's own streams)."""

    def __init__(self, out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.out_stream = sys.stdout if out is None else out
        self.err_stream = sys.stderr if err is None else err

    def result(self, text: str) -> None:
        """A line of the command's result, as it is (no markup, no wrapping)."""
        self.out_stream.write(text + "\n")
        self.out_stream.flush()

    def message(self, text: str) -> None:
        """A line of progress, a warning or an error, as it is."""
        self.err_stream.write(text + "\n")
        self.err_stream.flush()

    @cached_property
    def out(self) -> Console:
        """A rich console on stdout, for results with colour and tables (160 columns when not a terminal)."""
        from rich.console import Console

        console = Console(file=self.out_stream, soft_wrap=True, highlight=False)
        if not console.is_terminal:
            console.width = 160
        return console

    @cached_property
    def err(self) -> Console:
        """A rich console on stderr, for progress and warnings."""
        from rich.console import Console

        return Console(file=self.err_stream, soft_wrap=True, highlight=False)
