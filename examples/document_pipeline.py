"""A document pipeline: fan-out, parallel workers, retries, fan-in, live progress.

What it shows:
- fan-out: one step sends an event per document (``ctx.send_event``);
- parallel workers: ``@step(num_workers=3)`` summarizes three documents at a time;
- a flaky step with a retry policy: the (simulated) summarizer drops the connection
  the first time it sees a scanned document, and ``retry_policy`` tries again;
- fan-in: ``ctx.collect_events`` waits for every summary before the report is written;
- streaming progress to the caller: the workers write ``Progress`` events to the
  stream and the caller draws a progress bar from ``handler.stream_events()``;
- the trace of the run (``ConsoleTraceHandler``), where each failed attempt and its
  retry is a step of its own.

Run:
    python examples/document_pipeline.py
"""

from __future__ import annotations

import asyncio
import io

from workflows import Context, Workflow, step
from workflows.events import Event, StartEvent, StopEvent
from workflows.instrumentation import ConsoleTraceHandler, get_dispatcher
from workflows.retry_policy import (
    retry_if_exception_type,
    retry_policy,
    stop_after_attempt,
    wait_fixed,
)

DOCUMENTS = {
    "annual-report.txt": "Revenue grew by twelve percent. Costs were flat. The outlook is stable.",
    "scan-invoice-0042.png": "Invoice 42 asks for 1,250 EUR. It is payable within thirty days.",
    "meeting-notes.md": "The team agreed to ship in March. Testing starts next week.",
    "scan-contract.pdf": "This contract binds both parties for two years. Either may end it with notice.",
    "press-release.txt": "The company opens a new office in Lyon. Forty people will work there.",
}


class Document(Event):
    name: str
    text: str


class Summary(Event):
    name: str
    summary: str
    words: int


class Progress(Event):
    """Written to the stream for the caller: one more document is done."""

    document: str
    attempts: int


async def summarize_text(name: str, text: str, attempt: int) -> str:
    """Stands for a call to a summarization service: slow, and flaky on scans."""
    await asyncio.sleep(0.05)
    if name.startswith("scan") and attempt == 1:
        raise ConnectionError(f"summarizer dropped the connection while reading {name}")
    return text.split(". ")[0].rstrip(".") + "."


class DocumentPipeline(Workflow):
    @step
    async def fan_out(self, ctx: Context, ev: StartEvent) -> Document | None:
        await ctx.store.set("expected", len(ev.documents))
        for name, text in ev.documents.items():
            ctx.send_event(Document(name=name, text=text))
        return None

    @step(
        num_workers=3,
        retry_policy=retry_policy(
            retry=retry_if_exception_type(ConnectionError), wait=wait_fixed(0.1), stop=stop_after_attempt(3)
        ),
    )
    async def summarize(self, ctx: Context, ev: Document) -> Summary:
        attempt = ctx.retry_info().retry_number + 1
        summary = await summarize_text(ev.name, ev.text, attempt)
        ctx.write_event_to_stream(Progress(document=ev.name, attempts=attempt))
        return Summary(name=ev.name, summary=summary, words=len(ev.text.split()))

    @step
    async def write_report(self, ctx: Context, ev: Summary) -> StopEvent | None:
        expected = await ctx.store.get("expected")
        summaries = ctx.collect_events(ev, [Summary] * expected)
        if summaries is None:  # not all documents are summarized yet
            return None
        lines = [f"- {s.name} ({s.words} words): {s.summary}" for s in sorted(summaries, key=lambda s: s.name)]
        return StopEvent(result="\n".join(lines))


def progress_bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // total
    return f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"


async def main() -> None:
    trace = io.StringIO()  # printed after the report
    get_dispatcher().add_handler(ConsoleTraceHandler(file=trace, width=60))
    handler = DocumentPipeline().run(documents=DOCUMENTS)
    done = 0
    async for ev in handler.stream_events():
        if isinstance(ev, Progress):
            done += 1
            retried = f" (after {ev.attempts} attempts)" if ev.attempts > 1 else ""
            print(f"{progress_bar(done, len(DOCUMENTS))}  {ev.document}{retried}")
    report = await handler
    print(f"\nReport:\n{report}\n\nTrace:\n{trace.getvalue()}", end="")


if __name__ == "__main__":
    asyncio.run(main())
