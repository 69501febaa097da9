"""A program traced to a Langfuse that is down still gives its results and exits promptly.

Each case runs 200 short traced runs in a fresh interpreter (see
``tests/support/dead_backend.py``), against a port that refuses connections and against a
server that accepts them and never answers. The bound is the issue's: the interpreter
exits within 6 s of printing its results (the SDK alone took 10-31 s), and what could
not be sent is logged once.
"""

from __future__ import annotations

import pytest
from support.dead_backend import ProgramExit, SilentServer, check_prompt_exit, closed_port, run_program

EXIT_WITHIN = 6.0


def check(program: ProgramExit) -> None:
    check_prompt_exit(program, EXIT_WITHIN)


@pytest.mark.parametrize("options", [""])
def test_exits_promptly_when_the_port_is_closed(options: str) -> None:
    check(run_program("langfuse", closed_port(), exit_within=EXIT_WITHIN, options=options))


@pytest.mark.parametrize("options", [""])
def test_exits_promptly_when_the_backend_never_answers(options: str) -> None:
    with SilentServer() as silent:
        check(run_program("langfuse", silent.port, exit_within=EXIT_WITHIN, options=options))
