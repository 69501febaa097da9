"""A run as the debugger shows it, folded from what the store keeps of it.

``run_view`` reads the current run of a handler (the records from its last fresh
start: a handler id can be started again, and a continued run keeps writing to it)
and turns them into what the run page draws: step attempts with their timing,
outcome, error, LLM calls and state changes; retry back-offs; waits for a human and
the question asked; the state after each step; the event stream; the result or the
error with its traceback; token and cost totals. It is a pure function of stored
data, so any replica draws the same page.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from workflows_server.durable.journal import asks
from workflows_server.debugger.values import MISSING, apply_at, diff, jsonable, readable, state_of_snapshot
from workflows_server.store import HandlerRow, JournalEntry, Snapshot, StreamEvent
from workflows_server.store.queries import LlmCall


def parse_time(text: str) -> datetime:
    """An ISO 8601 time as an aware UTC datetime (a naive one is taken as UTC)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def millis(start: str, end: str | None) -> float | None:
    if end is None:
        return None
    return round((parse_time(end) - parse_time(start)).total_seconds() * 1000, 3)


def current_run(entries: list[JournalEntry]) -> list[JournalEntry]:
    """The records of the handler's latest run (from its last fresh ``RunStarted``)."""
    start = 0
    for index, entry in enumerate(entries):
        record = entry.record
        if record.get("kind") == "RunStarted" and not record.get("resumed"):
            start = index
    return entries[start:]


def base_snapshot(snapshots: list[Snapshot], entries: list[JournalEntry]) -> Snapshot | None:
    """The snapshot the current run began from (that of the epoch of its first record)."""
    if not snapshots:
        return None
    if not entries:
        return snapshots[-1]
    epoch = entries[0].epoch
    found = [s for s in snapshots if s.epoch <= epoch]
    return found[-1] if found else snapshots[0]


def trace_id_of(carrier: dict[str, str]) -> str | None:
    """The trace id of a W3C ``traceparent`` (``None`` when there is none or it is all zeros)."""
    parts = (carrier.get("traceparent") or "").split("-")
    if len(parts) >= 3 and len(parts[1]) == 32 and parts[1].strip("0"):
        return parts[1]
    return None


def trace_link(base: str | None, trace_id: str | None, default_path: str) -> str | None:
    """The link to ``trace_id`` in a backend at ``base`` (a URL with ``{trace_id}`` is a template)."""
    if not base or not trace_id:
        return None
    if "{trace_id}" in base:
        return base.replace("{trace_id}", trace_id)
    return base.rstrip("/") + default_path.format(trace_id=trace_id)


def _type_name(encoded: Any) -> str | None:
    if isinstance(encoded, dict) and isinstance(encoded.get("serialized"), str):
        text = encoded["serialized"]
        marker = '"qualified_name": "'
        at = text.rfind(marker)
        if at >= 0:
            name = text[at + len(marker):].split('"', 1)[0]
            return name.rsplit(".", 1)[-1]
    return None


def _error(encoded: Any) -> dict[str, str] | None:
    if not isinstance(encoded, dict):
        return None
    kind = str(encoded.get("type", ""))
    return {
        "type": kind.rsplit(".", 1)[-1] if kind.startswith("builtins.") else kind,
        "message": str(encoded.get("message", "")),
        "traceback": str(encoded.get("traceback", "")),
    }


@dataclass(kw_only=True)
class _Attempt:
    seq: int
    step: str
    attempt: int
    started_at: str
    input_type: str | None
    input: Any
    ended_at: str | None = None
    outcome: str = "running"
    output_type: str | None = None
    error: dict[str, str] | None = None
    retry_delay: float | None = None
    changes: list[dict[str, Any]] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)
    state_after: Any = None
    llm: list[dict[str, Any]] = field(default_factory=list)

    def data(self, now: str) -> dict[str, Any]:
        tokens = sum(call["total_tokens"] for call in self.llm)
        costs = [call["cost"] for call in self.llm if call["cost"] is not None]
        return {
            "seq": self.seq, "step": self.step, "attempt": self.attempt, "started_at": self.started_at,
            "ended_at": self.ended_at, "duration_ms": millis(self.started_at, self.ended_at or now),
            "outcome": self.outcome, "input_type": self.input_type, "input": jsonable(self.input),
            "output_type": self.output_type, "error": self.error, "retry_delay": self.retry_delay,
            "changes": jsonable(self.changes), "keys": self.keys,
            "state_after": jsonable(self.state_after) if self.ended_at else None,
            "llm": self.llm, "tokens": tokens, "cost": round(sum(costs), 6) if costs else None,
        }


def _llm_data(call: LlmCall) -> dict[str, Any]:
    return {
        "step": call.step, "attempt": call.attempt, "model": call.model, "started_at": call.started_at,
        "ended_at": call.ended_at, "duration_ms": millis(call.started_at, call.ended_at),
        "prompt_tokens": call.prompt_tokens, "completion_tokens": call.completion_tokens,
        "total_tokens": call.total_tokens, "cost": call.cost, "input": call.input_text, "output": call.output_text,
        "error": call.error, "span_id": call.span_id, "trace_id": call.trace_id,
    }


def _place_llm_calls(attempts: list[_Attempt], calls: list[LlmCall], now: str) -> list[dict[str, Any]]:
    """Attach each call to the attempt of its step that was running when it started; return the rest."""
    unplaced = []
    for call in calls:
        start = parse_time(call.started_at)
        owner = None
        for attempt in attempts:
            if attempt.step != call.step or attempt.attempt != call.attempt:
                continue
            if parse_time(attempt.started_at) <= start <= parse_time(attempt.ended_at or now):
                owner = attempt
                break
        if owner is None:
            # Clocks of the journal and the span differ by a few microseconds at most:
            # fall back on the nearest attempt of the same step and number.
            same = [a for a in attempts if a.step == call.step and a.attempt == call.attempt]
            owner = min(same, key=lambda a: abs((parse_time(a.started_at) - start).total_seconds()), default=None)
        if owner is None:
            unplaced.append(_llm_data(call))
        else:
            owner.llm.append(_llm_data(call))
    return unplaced


def _asked(record: dict[str, Any], at: str) -> dict[str, Any]:
    """The question of an ``EventEmitted`` record that asks (a returned ``InputRequiredEvent``), as the page shows it."""
    value = jsonable(readable(record.get("event")))
    return {
        "type": _type_name(record.get("event")), "value": _flatten(value) if isinstance(value, dict) else value,
        "sequence": None, "at": at,
    }


def _question(stream: list[StreamEvent]) -> dict[str, Any] | None:
    for item in reversed(stream):
        envelope = item.envelope
        if envelope.get("type") == "InputRequiredEvent" or "InputRequiredEvent" in (envelope.get("types") or ()):
            value = _flatten(envelope.get("value") or {})
            return {"type": envelope.get("type"), "value": value, "sequence": item.sequence, "at": item.at}
    return None


def _flatten(value: dict[str, Any]) -> dict[str, Any]:
    data = value.get("_data")
    out = {k: v for k, v in value.items() if k != "_data"}
    if isinstance(data, dict):
        out.update(data)
    return out


def run_view(
    row: HandlerRow,
    entries: list[JournalEntry],
    snapshots: list[Snapshot],
    stream: list[StreamEvent],
    calls: list[LlmCall],
    *,
    now: str | None = None,
    answers: str | None = None,
) -> dict[str, Any]:
    """Everything the run page shows of ``row`` (JSON-ready); see the module docstring.

    ``answers`` is the qualified name of the event that answers the run's questions (the
    ``HumanResponseEvent`` its workflow takes, if any): a question a step asked by
    returning an event is shown as a wait for it, as a ``ctx.wait_for_event`` is.
    """
    now = now or datetime.now(timezone.utc).isoformat()
    run = current_run(entries)
    base = base_snapshot(snapshots, run)
    state: Any = state_of_snapshot(base.payload) if base is not None else {}
    initial_state = state
    attempts: list[_Attempt] = []
    open_attempts: dict[int, _Attempt] = {}
    backoffs: list[dict[str, Any]] = []
    waits: list[dict[str, Any]] = []
    open_waits: dict[str, dict[str, Any]] = {}
    outside: list[dict[str, Any]] = []
    start_input: Any = None
    started_at = row.started_at
    finished_at: str | None = None
    run_error: dict[str, str] | None = None
    conclusion: str | None = None
    for entry in run:
        record = entry.record
        kind = record.get("kind")
        at = entry.at
        if kind == "RunStarted":
            if not record.get("resumed"):
                started_at = at
                start_input = readable(record.get("start_event"))
        elif kind == "StepStarted":
            seq = int(record.get("seq", 0))
            for backoff in backoffs:
                if backoff["seq"] == seq and backoff["ended_at"] is None:
                    backoff["ended_at"] = at
                    backoff["duration_ms"] = millis(backoff["started_at"], at)
            attempt = _Attempt(
                seq=seq, step=str(record.get("step")), attempt=int(record.get("attempt", 1)), started_at=at,
                input_type=_type_name(record.get("event")), input=readable(record.get("event")),
            )
            attempts.append(attempt)
            open_attempts[seq] = attempt
        elif kind == "StepFinished":
            seq = int(record.get("seq", 0))
            closing = open_attempts.pop(seq) if seq in open_attempts else None
            if closing is None:
                continue
            attempt = closing
            attempt.ended_at = at
            attempt.outcome = str(record.get("outcome"))
            attempt.output_type = _type_name(record.get("output"))
            attempt.error = _error(record.get("error"))
            attempt.retry_delay = record.get("retry_delay")
            attempt.state_after = state
            if attempt.outcome == "retrying":
                backoffs.append({
                    "seq": seq, "step": attempt.step, "after_attempt": attempt.attempt, "started_at": at,
                    "ended_at": None, "delay": attempt.retry_delay, "duration_ms": None,
                    "reason": attempt.error["message"] if attempt.error else None,
                    "error_type": attempt.error["type"] if attempt.error else None,
                })
        elif kind == "StateChanged":
            path = str(record.get("path", ""))
            before, after = readable(record.get("before")), readable(record.get("after"))
            state = apply_at(state, path, after)
            ops = diff(before, after, path) if path else diff(before if before is not MISSING else {}, after)
            keys = [str(k) for k in record.get("keys") or ()]
            owner = open_attempts.get(record["seq"]) if record.get("seq") is not None else None
            if owner is not None:
                owner.changes.extend(ops)
                owner.keys.extend(k for k in keys if k not in owner.keys)
            else:
                outside.append({"at": at, "keys": keys, "changes": jsonable(ops)})
        elif kind == "WaitStarted":
            wait: dict[str, Any] = {
                "step": record.get("step"), "seq": record.get("seq"), "waiter_id": record.get("waiter_id"),
                "event_type": str(record.get("event_type") or "").rsplit(".", 1)[-1] or None,
                "event_qualified_name": record.get("event_type"), "timeout": record.get("timeout"),
                "started_at": at, "ended_at": None, "outcome": "waiting", "duration_ms": None,
                "invocation_id": record.get("invocation_id"), "question": None,
            }
            waits.append(wait)
            open_waits[str(record.get("waiter_id"))] = wait
        elif kind == "EventEmitted" and record.get("source") == "stream":
            # ctx.wait_for_event writes its waiter_event (the question) to the stream right
            # after its WaitStarted, from the same step invocation.
            for wait in reversed(waits):
                if (wait["ended_at"] is None and wait["question"] is None and wait["step"] == record.get("step")
                        and wait["invocation_id"] == record.get("invocation_id")):
                    value = jsonable(readable(record.get("event")))
                    wait["question"] = {"type": _type_name(record.get("event")), "sequence": None, "at": at,
                                        "value": _flatten(value) if isinstance(value, dict) else value}
                    break
        elif kind == "WaitEnded":
            ended = open_waits.pop(str(record.get("waiter_id")), {})
            if ended:
                ended.update(ended_at=at, outcome=record.get("outcome"), duration_ms=millis(str(ended["started_at"]), at),
                            answer=jsonable(readable(record.get("event"))))
        elif kind == "EventEmitted":
            said = asks(record, answers is not None)
            if said:
                asked: dict[str, Any] = {
                    "step": record.get("step"), "seq": record.get("completes"), "waiter_id": f"input:{record.get('event_id')}",
                    "event_type": (answers or "HumanResponseEvent").rsplit(".", 1)[-1], "event_qualified_name": answers,
                    "timeout": None, "started_at": at, "ended_at": None, "outcome": "waiting", "duration_ms": None,
                    "question": _asked(record, at),
                }
                waits.append(asked)
                open_waits[asked["waiter_id"]] = asked
            elif said is False:
                for key in [k for k in open_waits if k.startswith("input:")]:
                    ended = open_waits.pop(key)
                    ended.update(ended_at=at, outcome="received", duration_ms=millis(str(ended["started_at"]), at),
                                 answer=jsonable(readable(record.get("event"))))
        elif kind == "RunConcluded":
            conclusion = str(record.get("status"))
            run_error = _error(record.get("error"))
        elif kind == "RunFinished":
            finished_at = at
    finished = row.status in ("completed", "failed", "cancelled")
    if finished and finished_at is None:
        finished_at = row.completed_at or row.updated_at
    end = finished_at or now
    for backoff in backoffs:
        if backoff["ended_at"] is None and backoff["delay"] is not None and finished:
            backoff["duration_ms"] = round(backoff["delay"] * 1000, 3)
    for wait in waits:
        if wait["ended_at"] is None:
            wait["duration_ms"] = millis(wait["started_at"], end)
    unplaced = _place_llm_calls(attempts, calls, now)
    waiting = row.status == "running" and (row.waiting_since is not None or (bool(open_waits) and not open_attempts))
    question = _question(stream) if waiting else None
    if waiting and question is None:
        # A run that asked by returning an InputRequiredEvent: its open wait holds the question.
        asked_last = next((w for w in reversed(waits) if w["ended_at"] is None and w.get("question")), None)
        if asked_last is not None:
            question = asked_last["question"]
    for wait in waits:
        if wait["ended_at"] is None and wait.get("question") is None:
            # The question a person answers: the wait's own (its waiter_event) when the
            # journal has one, else the last InputRequiredEvent the run wrote to its stream.
            wait["question"] = question
    steps = _step_states(attempts, backoffs, waits, finished)
    data_attempts = [a.data(end) for a in attempts]
    finished_attempts = [a for a in data_attempts if a["ended_at"] is not None]
    slowest = max(finished_attempts, key=lambda a: a["duration_ms"] or 0, default=None)
    if slowest is not None:
        slowest["slowest"] = True
    llm_all = [call for a in data_attempts for call in a["llm"]] + unplaced
    costs = [c["cost"] for c in llm_all if c["cost"] is not None]
    if run_error is None and row.status == "failed":
        failed = [a for a in data_attempts if a["outcome"] == "failed" and a["error"]]
        run_error = failed[-1]["error"] if failed else {"type": "", "message": row.error or "", "traceback": ""}
    result = row.result
    result_value = None
    if result is not None:
        value = result.get("value") or {}
        result_value = value.get("result") if result.get("type") == "StopEvent" and "result" in value else _flatten(value)
    return {
        "status": "waiting" if waiting else row.status,
        "started_at": started_at,
        "finished_at": finished_at,
        "duration_ms": millis(started_at, end),
        "input": jsonable(start_input),
        "initial_state": jsonable(initial_state),
        "state": jsonable(state),
        "attempts": data_attempts,
        "backoffs": backoffs,
        "waits": waits,
        "outside_changes": outside,
        "steps": steps,
        "question": question,
        "events": [
            {"sequence": s.sequence, "at": s.at, "type": s.envelope.get("type"), "types": s.envelope.get("types"),
             "value": _flatten(s.envelope.get("value") or {}), "internal": s.internal, "terminal": s.terminal}
            for s in stream
        ],
        "result": result,
        "result_value": result_value,
        "error": run_error if row.status == "failed" else None,
        "conclusion": conclusion,
        "llm_unplaced": unplaced,
        "totals": {
            "tokens": sum(c["total_tokens"] for c in llm_all),
            "prompt_tokens": sum(c["prompt_tokens"] for c in llm_all),
            "completion_tokens": sum(c["completion_tokens"] for c in llm_all),
            "cost": round(sum(costs), 6) if costs else None,
            "llm_calls": len(llm_all),
            "attempts": len(data_attempts),
            "retries": len(backoffs),
        },
        "version": f"{run[-1].position if run else -1}:{stream[-1].sequence if stream else -1}:{row.updated_at}:{len(calls)}",
    }


def _step_states(
    attempts: list[_Attempt], backoffs: list[dict[str, Any]], waits: list[dict[str, Any]], finished: bool
) -> dict[str, dict[str, Any]]:
    """Each step's live state for the graph: running, waiting, retrying, failed, finished."""
    states: dict[str, dict[str, Any]] = {}
    for attempt in attempts:
        entry = states.setdefault(attempt.step, {"state": "finished", "attempts": 0, "completed": 0, "failed": 0})
        entry["attempts"] += 1
        if attempt.outcome == "completed":
            entry["completed"] += 1
        elif attempt.outcome == "failed":
            entry["failed"] += 1
    rank = {"finished": 0, "failed": 1, "retrying": 2, "waiting": 3, "running": 4}

    def lift(step: str, state: str) -> None:
        entry = states.setdefault(step, {"state": "finished", "attempts": 0, "completed": 0, "failed": 0})
        if rank[state] > rank[entry["state"]]:
            entry["state"] = state

    for attempt in attempts:
        if attempt.outcome == "failed":
            lift(attempt.step, "failed")
        elif attempt.outcome == "running" and not finished:
            lift(attempt.step, "running")
    if not finished:
        for backoff in backoffs:
            if backoff["ended_at"] is None:
                lift(backoff["step"], "retrying")
        for wait in waits:
            if wait["ended_at"] is None:
                lift(str(wait["step"]), "waiting")
    return states


__all__ = ["base_snapshot", "current_run", "millis", "parse_time", "run_view", "trace_id_of", "trace_link"]
