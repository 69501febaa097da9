"""Helpers of the examples' tests: run an example as its own process, read the trees it prints.

Each example is run the way its header says (``python examples/NAME.py ...``), with the
interpreter running the tests, in an environment cleared of the variables that would
send it elsewhere (a real OpenAI key, exporters, Phoenix or Langfuse settings).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1]

_FOREIGN_SETTINGS = ("OPENAI_", "WORKFLOWS_", "PHOENIX_", "LANGFUSE_", "OTEL_")


def run_example(
    name: str,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
    expect_success: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``examples/{name}.py`` (or the folder ``examples/{name}``) with ``args``; by default fail the test, with the
    example's output, unless it exits with 0 and writes nothing to stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(_FOREIGN_SETTINGS)}
    environment.update(NO_COLOR="1", PYTHONIOENCODING="utf-8", **(env or {}))
    script = EXAMPLES / f"{name}.py"
    if not script.exists():
        script = EXAMPLES / name  # an example that is a folder with a __main__.py
    result = subprocess.run(
        [sys.executable, str(script), *args],
        check=False,  # the exit code is asserted below, with the example's output
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    if expect_success:
        assert result.returncode == 0 and not result.stderr, (
            f"{name}.py exited with {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


@dataclass
class Node:
    """One line of a printed tree (its text without the drawing) and the lines under it."""

    text: str
    children: list[Node] = field(default_factory=list)

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def find(self, prefix: str) -> list[Node]:
        """Every node at or below this one whose text starts with ``prefix``."""
        return [node for node in self.walk() if node.text.startswith(prefix)]


_LINE = re.compile(r"^((?:│  |   )*)(├─ |└─ )(.*)$")


def parse_trees(output: str, root_prefix: str) -> list[Node]:
    """The trees in ``output`` whose first line starts with ``root_prefix``."""
    roots: list[Node] = []
    stack: list[Node] = []
    for line in output.splitlines():
        if line.startswith(root_prefix):
            stack = [Node(line)]
            roots.append(stack[0])
            continue
        match = _LINE.match(line)
        if not match or not stack:
            stack = []
            continue
        depth = len(match.group(1)) // 3 + 1
        node = Node(match.group(3))
        del stack[depth:]
        stack[-1].children.append(node)
        stack.append(node)
    return roots
