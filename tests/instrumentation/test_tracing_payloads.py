"""Payload rendering: serializer shapes, masking, redaction, capture switch, caps, JSON Patch."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import enum
import json
from typing import Any

import pytest
from pydantic import BaseModel, Field, computed_field, field_serializer

from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import MISSING
from workflows.instrumentation.payloads import (
    JSON,
    TEXT,
    PayloadPolicy,
    is_secret_key,
    json_patch,
    to_jsonable,
)


class Opaque:
    """Something no serializer knows."""


class Ticket(Event):
    title: str
    tags: list[str] = []


class Color(enum.Enum):
    RED = "red"


@dataclasses.dataclass
class Point:
    x: int
    y: int


def apply_patch(document: Any, ops: list[dict[str, Any]]) -> Any:
    """A minimal RFC 6902 applier (add/remove/replace), enough to check our diffs."""
    doc = copy.deepcopy(document)
    for op in ops:
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in op["path"].split("/")[1:]]
        if not tokens:
            if op["op"] == "remove":
                doc = None
            else:
                doc = copy.deepcopy(op["value"])
            continue
        parent = doc
        for token in tokens[:-1]:
            parent = parent[int(token)] if isinstance(parent, list) else parent[token]
        last = tokens[-1]
        if isinstance(parent, list):
            index = len(parent) if last == "-" else int(last)
            if op["op"] == "add":
                parent.insert(index, copy.deepcopy(op["value"]))
            elif op["op"] == "remove":
                del parent[index]
            else:
                parent[index] = copy.deepcopy(op["value"])
        elif op["op"] == "remove":
            del parent[last]
        else:
            parent[last] = copy.deepcopy(op["value"])
    return doc


# -- shapes -------------------------------------------------------------------------------
def test_start_event_shows_its_dynamic_fields_as_plain_fields() -> None:
    assert to_jsonable(StartEvent(topic="x", n=2)) == {"topic": "x", "n": 2}
    assert json.loads(PayloadPolicy().render(StartEvent(topic="x")).text) == {"topic": "x"}


def test_typed_event_renders_its_model_dump_in_json_mode() -> None:
    rendered = PayloadPolicy().render(Ticket(title="bug", tags=["a"], extra=datetime.date(2024, 1, 2)))
    assert rendered.mime_type == JSON
    assert json.loads(rendered.text) == {"title": "bug", "tags": ["a"], "extra": "2024-01-02"}


def test_stop_event_renders_its_result() -> None:
    assert json.loads(PayloadPolicy().render(StopEvent(result={"a": 1})).text) == {"result": {"a": 1}}


def test_plain_string_is_text_and_other_values_are_json() -> None:
    policy = PayloadPolicy()
    assert policy.render("hello\nworld") == ("hello\nworld", TEXT, False)
    assert policy.render(3) == ("3", JSON, False)
    assert policy.render(None) == ("null", JSON, False)


def test_unserializable_values_are_shown_by_type_name_never_raised() -> None:
    assert to_jsonable({"client": Opaque(), "n": 1}) == {"client": "<Opaque>", "n": 1}
    # inside an event's dynamic fields, where the serializer itself would fail
    assert to_jsonable(StartEvent(client=Opaque(), topic="t")) == {"client": "<Opaque>", "topic": "t"}
    assert json.loads(PayloadPolicy().render(StartEvent(client=Opaque())).text) == {"client": "<Opaque>"}
    assert PayloadPolicy().render(Opaque()).text == '"<Opaque>"'


def test_common_python_values_become_json() -> None:
    value = {
        "when": datetime.datetime(2024, 5, 1, 12, 0),
        "color": Color.RED,
        "point": Point(1, 2),
        "items": (1, 2),
        "nan": float("nan"),
        3: "int key",
    }
    assert to_jsonable(value) == {
        "when": "2024-05-01T12:00:00",
        "color": "red",
        "point": {"x": 1, "y": 2},
        "items": [1, 2],
        "nan": "nan",
        "3": "int key",
    }


def test_cycles_are_cut_instead_of_recursing_forever() -> None:
    loop: dict[str, Any] = {"name": "a"}
    loop["self"] = loop
    assert to_jsonable(loop) == {"name": "a", "self": "<dict>"}


# -- masking and redaction ----------------------------------------------------------------
@pytest.mark.parametrize(
    "key",
    ["api_key", "OPENAI_API_KEY", "openai_api_key", "apiKey", "password", "db-password", "token",
     "access_token", "X-Auth-Token", "accessToken", "client_secret", "Authorization"],
)  # fmt: skip
def test_secret_looking_keys_are_recognised(key: str) -> None:
    assert is_secret_key(key)


@pytest.mark.parametrize("key", ["max_tokens", "token_count", "prompt_tokens", "token_ids", "tokenizer", "title", "keys"])
def test_counters_and_ordinary_keys_are_not_secrets(key: str) -> None:
    assert not is_secret_key(key)


def test_secret_values_are_masked_at_any_depth() -> None:
    event = StartEvent(config={"openai_api_key": "sk-123", "model": "m"}, password="hunter2", max_tokens=5)
    rendered = PayloadPolicy().render(event)
    assert "sk-123" not in rendered.text and "hunter2" not in rendered.text
    assert json.loads(rendered.text) == {"config": {"openai_api_key": "***", "model": "m"}, "password": "***", "max_tokens": 5}


def test_secret_in_a_declared_field_is_masked() -> None:
    class Login(Event):
        user: str
        password: str

    assert json.loads(PayloadPolicy().render(Login(user="ann", password="pw")).text) == {"user": "ann", "password": "***"}


class _Scalars(Event):
    name: str
    note: str | None = None
    count: int = 0
    done: bool = False


class _Computed(Event):
    a: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def session_token(self) -> str:
        return "t-123"


class _Serialized(Event):
    a: int

    @field_serializer("a")
    def _wrap(self, value: int) -> dict[str, int]:
        return {"token": value}


class _Aliased(Event):
    a: int = Field(serialization_alias="apiKey")


class _Inner(Event):
    n: int


class _Outer(Event):
    inner: _Inner


@pytest.mark.parametrize(
    "event",
    [
        _Scalars(name="token in a value is not a key"),
        _Scalars(name="x", note="y", count=2, done=True),
        _Scalars(name="x", password="dynamic fields are merged and masked"),
        _Computed(a=1),
        _Serialized(a=2),
        _Aliased(a=3),
        _Outer(inner=_Inner(n=1)),
        _Outer(inner=_Inner(n=1, api_key="nested dynamic field")),
    ],
    ids=lambda event: type(event).__name__,
)
def test_events_render_as_their_masked_dump_whichever_path_renders_them(event: Event) -> None:
    # Events of plain scalar fields take a fast path (their fields' serializer, no scan
    # for secrets); the others go through the general one. Both must give the same data.
    policy = PayloadPolicy()
    for _ in range(2):  # the second time, from what was worked out for the class
        rendered = policy.render(event)
        assert rendered.mime_type == JSON
        assert json.loads(rendered.text) == to_jsonable(event)
    assert "t-123" not in rendered.text and "nested dynamic field" not in rendered.text


def test_masking_can_be_switched_off() -> None:
    assert json.loads(PayloadPolicy(mask_secrets=False).render({"token": "t"}).text) == {"token": "t"}


def test_redaction_hook_sees_every_payload_before_it_is_rendered() -> None:
    seen: list[Any] = []

    def redact(value: Any) -> Any:
        seen.append(value)
        return json.loads(json.dumps(value).replace("ann@example.com", "<email>"))

    policy = PayloadPolicy(redact=redact)
    assert json.loads(policy.render(StartEvent(email="ann@example.com")).text) == {"email": "<email>"}
    assert policy.render("mail ann@example.com").text == "mail <email>"
    assert seen == [{"email": "ann@example.com"}, "mail ann@example.com"]


def test_failing_redaction_hook_never_leaks_the_value(caplog: pytest.LogCaptureFixture) -> None:
    def broken(value: Any) -> Any:
        raise RuntimeError("bug in hook")

    policy = PayloadPolicy(redact=broken)
    text = policy.render(StartEvent(secretive="s3")).text
    assert "s3" not in text and "<redaction failed>" in text
    policy.render("again")
    assert sum("redaction hook raised RuntimeError" in r.message for r in caplog.records) == 1


# -- capture off and caps -----------------------------------------------------------------
def test_capture_off_keeps_type_and_size_only() -> None:
    rendered = PayloadPolicy(capture_content=False).render(Ticket(title="confidential"))
    summary = json.loads(rendered.text)
    assert "confidential" not in rendered.text
    assert summary == {"type": "Ticket", "bytes": len('{"title":"confidential","tags":[]}')}


def test_capture_off_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORKFLOWS_CAPTURE_CONTENT", "false")
    assert PayloadPolicy().capture_content is False
    monkeypatch.setenv("WORKFLOWS_CAPTURE_CONTENT", "1")
    assert PayloadPolicy().capture_content is True
    assert PayloadPolicy(capture_content=False).capture_content is False


def test_long_payload_is_cut_to_the_cap_and_marked() -> None:
    policy = PayloadPolicy(max_bytes=200)
    rendered = policy.render(StartEvent(text="é" * 1000))
    assert rendered.truncated
    assert rendered.mime_type == TEXT  # no longer valid JSON
    assert len(rendered.text.encode("utf-8")) <= 200
    assert rendered.text.startswith('{"text":"éé')
    assert rendered.text.endswith("bytes]")


def test_payload_at_the_cap_is_kept_whole() -> None:
    policy = PayloadPolicy(max_bytes=64)
    text = "a" * 64
    assert policy.render(text) == (text, TEXT, False)


def test_default_cap_is_16_kib_and_configurable_by_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert PayloadPolicy().max_bytes == 16 * 1024
    monkeypatch.setenv("WORKFLOWS_MAX_PAYLOAD_BYTES", "1000")
    assert PayloadPolicy().max_bytes == 1000


def test_bad_settings_are_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValueError, match="max_payload_bytes must be an integer"):
        PayloadPolicy(max_bytes=0)
    with pytest.raises(TypeError, match="redact must be a callable"):
        PayloadPolicy(redact="nope")  # type: ignore[arg-type]


# -- JSON Patch ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ({"a": 1}, {"a": 2}),
        ({"a": 1, "b": 2}, {"a": 1}),
        ({"a": 1}, {"a": 1, "c": {"d": [1]}}),
        ({"l": [1, 2, 3]}, {"l": [1, 5]}),
        ({"l": [1]}, {"l": [1, 2, 3]}),
        ({"n": {"x": {"y": 1}}}, {"n": {"x": {"y": 2, "z": None}}}),
        ({"a/b": 1, "t~": 2}, {"a/b": 3, "t~": 4}),
        ({"flag": 1}, {"flag": True}),
        ([1, {"a": 1}], [2, {"a": 2}]),
    ],
)
def test_json_patch_turns_before_into_after(before: Any, after: Any) -> None:
    ops = json_patch(before, after)
    assert apply_patch(before, ops) == after
    assert all(op["op"] in ("add", "remove", "replace") for op in ops)


def test_json_patch_of_equal_values_is_empty() -> None:
    assert json_patch({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2}]}) == []


def test_json_patch_paths_are_escaped_and_prefixed() -> None:
    assert json_patch({"a/b": 1}, {"a/b": 2}, prefix="/cfg") == [{"op": "replace", "path": "/cfg/a~1b", "value": 2}]


def test_json_patch_treats_missing_as_absent() -> None:
    assert json_patch(MISSING, 5, "/count") == [{"op": "add", "path": "/count", "value": 5}]
    assert json_patch(5, MISSING, "/count") == [{"op": "remove", "path": "/count"}]


def test_state_change_of_a_model_is_a_patch_of_its_fields() -> None:
    class State(BaseModel):
        num_runs: int = 0
        notes: list[str] = []

    rendered = PayloadPolicy().render_state_change("", State(), State(num_runs=1, notes=["x"]))
    assert json.loads(rendered.text) == [
        {"op": "replace", "path": "/num_runs", "value": 1},
        {"op": "add", "path": "/notes/0", "value": "x"},
    ]


def test_state_change_under_a_secret_key_is_masked() -> None:
    rendered = PayloadPolicy().render_state_change("/api_key", MISSING, "sk-1")
    assert json.loads(rendered.text) == [{"op": "add", "path": "/api_key", "value": "***"}]


def test_state_change_with_capture_off_keeps_paths_drops_values() -> None:
    rendered = PayloadPolicy(capture_content=False).render_state_change("", {"a": 1, "b": 1}, {"a": 2})
    assert json.loads(rendered.text) == [{"op": "remove", "path": "/b"}, {"op": "replace", "path": "/a"}]


def test_a_too_small_payload_cap_in_the_environment_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from workflows.instrumentation.payloads import DEFAULT_MAX_PAYLOAD_BYTES, PayloadPolicy

    monkeypatch.setenv("WORKFLOWS_MAX_PAYLOAD_BYTES", "10")
    assert PayloadPolicy().max_bytes == DEFAULT_MAX_PAYLOAD_BYTES
    assert "below the minimum" in caplog.text
