"""The agent's trace in Arize Phoenix: start a local Phoenix, send the trace, open the URL.

What it shows:
- ``workflows_phoenix.register(...)``, the one call that sends every workflow run to
  Phoenix; with ``auto_instrument=True`` it also turns on the OpenAI instrumentation,
  so the agent's LLM calls appear under the steps that made them;
- the agent of ``agent.py`` (offline, against its scripted model) traced there: open
  the printed URL to see the run, its steps, tool calls and LLM calls, with their
  messages and token counts, and the run's session under "Sessions".

Run:
    python examples/phoenix                                  # starts Phoenix on 127.0.0.1, Ctrl+C stops it
    python examples/phoenix --endpoint http://localhost:6006  # use a Phoenix that is already running
Add ``--exit`` to stop right after the trace is stored instead of keeping Phoenix up.

Needs: pip install "otel-workflows[examples]" otel-workflows-phoenix, and to start
Phoenix, the ``arize-phoenix`` server: installed beside them, or (kept out of your
application's environment, see docs/phoenix.md) a ``phoenix`` command on PATH, as
``pipx install arize-phoenix`` gives.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

# A folder run as a script (``python examples/phoenix``): the other examples live one
# level up. The folder has no __init__.py, so it never hides the ``phoenix`` package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import workflows_phoenix  # noqa: E402
from agent import DEFAULT_QUESTION, ask_offline  # noqa: E402
from trace_tree import TraceTree  # noqa: E402

PROJECT = "weather-agent"
STARTUP_DEADLINE_S = 120.0  # a first start creates Phoenix's database: tens of seconds on a slow machine
INGEST_DEADLINE_S = 30.0


def phoenix_command() -> list[str] | None:
    """How to run Phoenix's command line: the server installed in this environment,
    else a ``phoenix`` command on PATH; ``None`` without either."""
    if importlib.util.find_spec("phoenix.server") is not None:
        return [sys.executable, "-m", "phoenix.server.main"]
    found = shutil.which("phoenix")
    return [found] if found else None


@contextmanager
def local_phoenix(command: list[str]) -> Iterator[str]:
    """Run ``command serve`` (Phoenix's command line) on free loopback ports, with its
    data in a temporary folder, until the block ends; yields its URL."""
    working_dir = Path(tempfile.mkdtemp(prefix="phoenix-example-"))
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PHOENIX_")}
    env.update(
        PHOENIX_HOST="127.0.0.1",
        PHOENIX_PORT=str(port),
        PHOENIX_GRPC_PORT=str(_free_port()),
        PHOENIX_WORKING_DIR=str(working_dir),
        PHOENIX_TELEMETRY_ENABLED="false",
    )
    url = f"http://127.0.0.1:{port}"
    with open(working_dir / "phoenix.log", "wb") as log:
        server = subprocess.Popen(
            [*command, "serve"],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        _wait_until_healthy(server, url, working_dir / "phoenix.log")
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(working_dir, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_until_healthy(server: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_DEADLINE_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            sys.exit(f"Phoenix stopped while starting; its log:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    sys.exit(f"Phoenix did not start within {STARTUP_DEADLINE_S:.0f} s; see {log}")


def wait_for_trace(url: str, trace_id: str) -> int:
    """Phoenix stores spans a moment after receiving them: poll until it holds the whole
    trace (a root, and the parent of every span), and return how many spans that is."""
    deadline = time.monotonic() + INGEST_DEADLINE_S
    while time.monotonic() < deadline:
        response = httpx.get(
            f"{url}/v1/projects/{PROJECT}/spans", params={"trace_id": trace_id, "limit": 1000}, timeout=10
        )
        if response.status_code == 200:
            spans = response.json()["data"]
            ids = {span["context"]["span_id"] for span in spans}
            if spans and all(span["parent_id"] is None or span["parent_id"] in ids for span in spans):
                return len(spans)
        time.sleep(0.25)
    sys.exit(f"Phoenix at {url} did not show trace {trace_id} within {INGEST_DEADLINE_S:.0f} s")


def send_agent_trace(url: str, question: str) -> None:
    provider = workflows_phoenix.register(PROJECT, endpoint=url, auto_instrument=True)
    tree = TraceTree()  # only to learn the trace's id, for the URL
    provider.add_span_processor(tree)

    answer = ask_offline(question)
    provider.force_flush()
    [trace_id] = tree.trace_ids()
    spans = wait_for_trace(url, trace_id)

    print(f"Question: {question}")
    print(f"Answer:   {answer}")
    print(f"\nPhoenix stored the trace ({spans} spans) in project {PROJECT!r}. Open it:")
    print(f"    {url}/redirects/traces/{trace_id}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("question", nargs="?", default=DEFAULT_QUESTION)
    parser.add_argument("--endpoint", help="the URL of a running Phoenix (default: start one here)")
    parser.add_argument("--exit", action="store_true", help="stop once the trace is stored")
    args = parser.parse_args()

    if args.endpoint:
        send_agent_trace(args.endpoint.rstrip("/"), args.question)
        return
    command = phoenix_command()
    if command is None:
        sys.exit("Starting Phoenix needs its server: pip install arize-phoenix (or pipx install "
                 "arize-phoenix, for a phoenix command on PATH), or pass --endpoint with the URL "
                 "of a Phoenix that runs elsewhere.")
    print("Starting Phoenix on 127.0.0.1 (its first start takes a few seconds)...", flush=True)
    with local_phoenix(command) as url:
        send_agent_trace(url, args.question)
        if args.exit:
            return
        print("\nPhoenix runs until you press Ctrl+C.", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            print("\nStopping Phoenix.")


if __name__ == "__main__":
    main()
