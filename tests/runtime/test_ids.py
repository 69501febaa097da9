"""``random_id()``: random version-4 UUIDs in hex, drawn from the kernel's random bytes in batches."""

from __future__ import annotations

import os
import sys
import uuid

import pytest

from workflows import Context, Workflow, step
from workflows.events import StartEvent, StopEvent
from workflows.runtime import ids
from workflows.runtime.ids import random_id


def test_an_id_is_the_hex_of_a_version_4_uuid() -> None:
    made = random_id()

    parsed = uuid.UUID(hex=made)
    assert len(made) == 32 and parsed.hex == made
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_ids_do_not_repeat_across_many_batches_of_random_bytes() -> None:
    made = [random_id() for _ in range(5000)]  # about twenty batches

    assert len(set(made)) == len(made)


def test_a_context_is_named_by_a_fresh_random_id() -> None:
    class Echo(Workflow):
        @step
        async def echo(self, ev: StartEvent) -> StopEvent:
            return StopEvent(result=None)

    first, second = Context(Echo()), Context(Echo())

    assert uuid.UUID(hex=first.session_id).version == 4
    assert first.session_id != second.session_id


@pytest.mark.skipif(sys.platform == "win32", reason="fork is POSIX")
def test_a_forked_child_never_hands_out_its_parents_next_ids() -> None:
    random_id()  # the parent holds a batch with ids still unused
    reader, writer = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - the child's side, reported through the pipe
        os.write(writer, random_id().encode())
        os._exit(0)
    os.close(writer)
    _, status = os.waitpid(child, 0)
    childs = os.read(reader, 64).decode()
    os.close(reader)

    assert os.waitstatus_to_exitcode(status) == 0
    assert childs and childs != random_id()


def test_the_batch_is_fetched_again_once_used_up(monkeypatch: pytest.MonkeyPatch) -> None:
    fetched: list[int] = []
    real = os.urandom

    def counting(size: int) -> bytes:
        fetched.append(size)
        return real(size)

    monkeypatch.setattr(ids, "_pool", b"")
    monkeypatch.setattr(ids.os, "urandom", counting)
    for _ in range(300):
        random_id()

    assert fetched == [ids._BATCH, ids._BATCH]  # 256 ids per batch
