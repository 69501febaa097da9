"""``ReplicaPlacement``: replicas on one shared store: claiming runs, keeping their leases, delivering mail.

One ``ReplicaPlacement`` per server process on a ``SharedStore`` (PostgreSQL). It runs on the
server's event loop:

- the *claim loop* takes runs while this replica has room (``max_runs`` runs in
  memory): new runs queued by any replica, waiting runs whose answer arrived, and runs
  whose owner's lease lapsed (a dead or paused replica: a *takeover*); it wakes on the
  store's notifications and otherwise every ``poll_seconds``;
- the *heartbeat* renews the leases of the runs this replica holds every third of
  ``lease_seconds``; a run whose lease was lost (another replica took it over while this
  one was paused) is dropped here without writing anything;
- the *inbox*: an event or a cancel sent to a run through another replica is put in the
  run's inbox; the run's owner delivers it (the event's journal record and the inbox
  item's removal are one transaction), or, for a run waiting in the store, whichever
  replica claims the run first continues it and delivers it;
- notifications from other replicas (a run's stream grew, its status changed) wake the
  requests of this replica that wait on that run (streams, ``POST /run``).

Writes for a run are fenced by the store: a replica that lost its claim cannot write
(``FencedOut``), so a paused replica that comes back cannot write over the new owner's work.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Any

from workflows import Workflow
from workflows.context.serializers import JsonSerializer
from workflows.errors import WorkflowRuntimeError
from workflows.events import Event
from workflows.handler import WorkflowHandler
from workflows_server.runs.errors import RunConflict
from workflows_server.runs.live import LiveRuns, Stranded
from workflows_server.runs.placement import Placement
from workflows_server.store import TERMINAL, Claim, FencedOut, HandlerRow, SharedStore, StoreError

logger = logging.getLogger("workflows_server.replicas")


def store_error_of(error: BaseException | None) -> StoreError | None:
    """The store error that ended a run (its own exception, or what caused it), if any."""
    seen = 0
    while error is not None and seen < 5:
        if isinstance(error, StoreError):
            return error
        error = error.__cause__ or error.__context__
        seen += 1
    return None


class ReplicaPlacement(Placement):
    """This process's part in sharing ``store`` with the other replicas; see the module docstring."""

    def __init__(
        self, live: LiveRuns, workflows: dict[str, Workflow], store: SharedStore, *, lease_seconds: float,
        max_runs: int, poll_seconds: float,
    ) -> None:
        self.live = live
        self.workflows = workflows
        self.worker = live.worker
        self.store = store
        self.lease_seconds = lease_seconds
        self.max_runs = max_runs
        self.poll_seconds: float | None = poll_seconds
        self.interval = poll_seconds
        """Between two looks for work, and two reads of the store by a request waiting on a notification."""
        self.counts: Counter[str] = Counter()
        """claimed, takeovers, leases_lost, dropped, delivered."""
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_listening: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._delivering: set[str] = set()
        self.mail: set[str] = set()
        """Runs continued for their inbox: not let go of before it is delivered."""
        self.dropped: set[str] = set()

    @property
    def owner(self) -> str:
        return self.store.owner

    @property
    def fencing_rejections(self) -> int:
        return int(getattr(self.store, "rejections", 0))

    # ------------------------------------------------------------------ lifetime
    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stop_listening = await asyncio.to_thread(self.store.listen, self._from_listener)
        self._tasks = [
            asyncio.create_task(self._claim_loop(), name="workflows-server-claims"),
            asyncio.create_task(self._heartbeat_loop(), name="workflows-server-heartbeat"),
        ]
        self.kick()

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._stop_listening is not None:
            await asyncio.to_thread(self._stop_listening)

    async def let_go(self) -> None:
        """Free every run this replica holds (a graceful stop): the others take them at once."""
        for handler_id in list(self.store.held()):
            try:
                await self.worker.write(self.store.unclaim, handler_id)
            except StoreError:
                logger.warning("could not let go of run %s; it is taken over when its lease lapses", handler_id)

    def kick(self) -> None:
        """Look for work now rather than at the next poll."""
        if self._wake is not None:
            self._wake.set()

    # ------------------------------------------------------------------ notifications
    def _from_listener(self, kind: str, handler_id: str) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._on_note, kind, handler_id)

    def _on_note(self, kind: str, handler_id: str) -> None:
        hub = self.live.hub
        if kind == "stream":
            hub.notify(handler_id)
        elif kind == "status":
            hub.notify_ended(handler_id)
        elif kind == "inbox":
            hub.notify(f"inbox:{handler_id}")
            if handler_id in self.live.handlers:
                self.deliver_soon(handler_id)
            else:
                self.kick()
        elif kind == "queue":
            self.kick()
        elif kind == "reconnect":
            # Notifications may have been missed: wake every waiter to read the store again.
            hub.notify_all()
            self.kick()

    # ------------------------------------------------------------------ claims
    def room(self) -> int:
        return self.max_runs - len(self.live.handlers) - len(self.live.releasing)

    async def _claim_loop(self) -> None:
        assert self._wake is not None
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()
            if self.live.stopping:
                return
            try:
                while (room := self.room()) > 0:
                    claims = await self.worker.write(
                        self.store.claim, workflows=list(self.workflows), limit=room, lease_seconds=self.lease_seconds
                    )
                    for claim in claims:
                        await self.adopt(claim)
                    if len(claims) < room:
                        break
            except StoreError as exc:
                logger.warning("claiming runs failed (%s); trying again in %ss", exc, self.interval)

    async def adopt(self, claim: Claim) -> WorkflowHandler | None:
        """Run a run this replica just claimed (continued from the store); ``None`` if there is nothing to run."""
        handler_id = claim.handler_id
        self.counts["claimed"] += 1
        if claim.previous_owner is not None:
            self.counts["takeovers"] += 1
            logger.info("took over run %s from replica %s (claim %s)", handler_id, claim.previous_owner, claim.fence)
        worker = self.worker
        workflow = self.workflows.get(claim.workflow_name)
        if workflow is None:
            await worker.write(self.store.unclaim, handler_id)
            return None
        try:
            has_mail = bool(await worker.read(self.store.inbox, handler_id))
            handler = await self.live.runtime.continue_run(workflow, handler_id, start_waiting=has_mail)
        except FencedOut:
            return None
        except Exception as exc:
            logger.exception("run %s could not be continued; it is marked failed", handler_id)
            try:
                await self.live.end(handler_id, "failed", f"could not be continued from the store: {type(exc).__name__}: {exc}")
            finally:
                await worker.write(self.store.unclaim, handler_id)
            return None
        if handler is None:
            # Finished (from its journal), or waiting with nothing to deliver: the store keeps it.
            await worker.write(self.store.unclaim, handler_id)
            self.live.hub.notify_ended(handler_id)
            return None
        self.live.track(handler_id, handler)
        if has_mail:
            self.mail.add(handler_id)
            self.deliver_soon(handler_id)
        return handler

    # ------------------------------------------------------------------ heartbeat
    async def _heartbeat_loop(self) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)
            started = time.monotonic()
            try:
                lost = await self.worker.write(self.store.renew, lease_seconds=self.lease_seconds)
            except StoreError as exc:
                logger.warning("renewing leases failed (%s); the runs are fenced if another replica takes them", exc)
                continue
            for handler_id in lost:
                self.counts["leases_lost"] += 1
                logger.warning("lost the lease on run %s to another replica; dropping it here", handler_id)
                self.drop(handler_id)
            if time.monotonic() - started > interval:
                logger.warning("renewing leases took %.1fs, longer than the heartbeat interval", time.monotonic() - started)

    def drop(self, handler_id: str) -> None:
        """Stop running a run another replica now holds, writing nothing more for it."""
        live = self.live
        handler = live.handlers.pop(handler_id, None) or live.releasing.pop(handler_id, None)
        if handler is None:
            return
        self.dropped.add(handler_id)
        self.counts["dropped"] += 1
        journal = live.runtime.journal_of(handler.run_id)
        if journal is not None:
            journal.detached = True
        handler.abandon()

    async def ended(self, handler_id: str, handler: WorkflowHandler, concluded: bool) -> None:
        """A run's task ended on this replica: record a failure it left unrecorded, and let go of it."""
        if handler_id in self.dropped:
            self.dropped.discard(handler_id)
            return
        if handler_id not in self.store.held():
            return  # fenced out: another replica holds it, nothing to write
        if handler_id in self.live.handlers:
            return  # continued again meanwhile: that incarnation holds the claim
        worker = self.worker
        try:
            row = None
            if not concluded:
                # After whatever holds the run's lock (letting go of it writes its waiting epoch).
                async with self.live.lock(handler_id):
                    row = await worker.read(self.store.get_handler, handler_id)
            if row is not None and row.status == "running" and row.run_id == handler.run_id and not row.waiting_since:
                error = handler.error
                if store_error_of(error) is None:
                    await self.live.end(
                        handler_id, "failed", f"{type(error).__name__}: {error}" if error else "the run ended unrecorded"
                    )
            # else it finished, or waits in the store; a store failure leaves it for any replica to continue
            await worker.write(self.store.unclaim, handler_id)
        except StoreError as exc:
            logger.warning("could not let go of run %s (%s); its lease lapses", handler_id, exc)
        self.kick()

    # ------------------------------------------------------------------ what the run service asks
    async def create(self, row: HandlerRow, base: dict[str, Any]) -> bool:
        # Claimed as it is written when this replica has room: no other replica (nor this
        # one's claim loop) can take it first.
        if self.room() <= 0:
            await self.worker.write(self.store.create_handler, row, base)
            return False
        await self.worker.write(self.store.create_claimed, row, base, lease_seconds=self.lease_seconds)
        self.counts["claimed"] += 1
        return True

    async def run_here(self, handler_id: str) -> bool:
        # The run is queued in the store; this replica runs it at once if it has room and
        # wins the claim, else whichever replica has room claims it.
        if self.room() <= 0:
            return False
        claim = await self.worker.write(self.store.claim_one, handler_id, lease_seconds=self.lease_seconds)
        if claim is None:
            return False
        self.counts["claimed"] += 1
        return True

    def holds(self, handler_id: str) -> bool:
        handler = self.live.handlers.get(handler_id)
        return handler is not None and not handler.is_done() and handler_id in self.store.held()

    def may_release(self, handler_id: str) -> bool:
        return handler_id not in self.mail

    async def send_elsewhere(self, handler_id: str, event: Event, step: str | None) -> None:
        # Wherever the run is (on another replica, or waiting in the store), the event goes to
        # its inbox: the owner delivers it, or whichever replica claims the waiting run.
        row = await self.worker.read(self.store.get_handler, handler_id)
        workflow = self.workflows.get(row.workflow_name) if row is not None else None
        if row is None or workflow is None:
            return
        if step is not None and step not in workflow.step_specs:
            raise WorkflowRuntimeError(f"Step {step} does not exist")
        serialized = (workflow.serializer or JsonSerializer()).serialize(event)
        item = await self.worker.write(self.store.post, handler_id, kind="event", event=serialized, step=step)
        self.kick()
        if await self.wait_delivered(handler_id, item, timeout=2 * self.lease_seconds + 5):
            return
        row = await self.worker.read(self.store.get_handler, handler_id)
        if row is not None and row.status in TERMINAL and await self.worker.read(self.store.pending, item):
            await self.worker.write(self.store.ack, [item])
            raise RunConflict(f"handler {handler_id!r} has already {row.status}: it takes no more events")
        # Still in the inbox: it is delivered when a replica takes the run.

    async def recover(self, handler_id: str, stranded: Stranded) -> None:
        # The run's lease lapses while the store fails: whichever replica claims it next
        # continues it from its last durable record (this one too, through the claim loop).
        if handler_id in self.store.held():
            await self.worker.write(self.store.unclaim, handler_id)
        self.kick()

    async def cancel_unheld(self, handler_id: str) -> None:
        claim = await self.worker.write(self.store.claim_one, handler_id, lease_seconds=self.lease_seconds)
        if claim is not None:
            # Free (queued or waiting) or its owner is gone: this replica records the end.
            try:
                await self.live.end(handler_id, "cancelled")
            finally:
                await self.worker.write(self.store.unclaim, handler_id)
            return
        # Held by a live replica: it cancels the run when it reads its inbox.
        item = await self.worker.write(self.store.post, handler_id, kind="cancel")
        await self.wait_delivered(handler_id, item, timeout=2 * self.lease_seconds + 5)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.lease_seconds + 5
        while loop.time() < deadline:
            changed = self.live.hub.future(handler_id)
            row = await self.worker.read(self.store.get_handler, handler_id)
            if row is None or row.status != "running":
                return
            await asyncio.wait([changed], timeout=self.interval)

    # ------------------------------------------------------------------ inbox
    def deliver_soon(self, handler_id: str) -> None:
        if handler_id not in self._delivering:
            self._delivering.add(handler_id)
            self.live.tasks.spawn(self._deliver(handler_id), f"workflows-server-deliver-{handler_id}")

    async def _deliver(self, handler_id: str) -> None:
        try:
            handler = self.live.handlers.get(handler_id)
            if handler is None:
                return
            await self.live.runtime.until_begun(handler)
            self._delivering.discard(handler_id)
            await self.deliver(handler_id, handler)
        except StoreError as exc:
            logger.warning("delivering the inbox of run %s failed: %s", handler_id, exc)
        finally:
            self._delivering.discard(handler_id)
            if handler_id in self.mail:
                self.mail.discard(handler_id)
                # Continued for an event it then refused (or a cancel): let go of it again if idle.
                self.live.release_soon(handler_id)

    async def deliver(self, handler_id: str, handler: WorkflowHandler) -> None:
        """Hand the run's inbox items to its live handler, in order."""
        worker = self.worker
        row = await worker.read(self.store.get_handler, handler_id)
        if row is None:
            return
        workflow = self.workflows.get(row.workflow_name)
        for item in await worker.read(self.store.inbox, handler_id):
            if self.live.handlers.get(handler_id) is not handler or handler.is_done():
                return
            if item.kind == "cancel":
                await worker.write(self.store.ack, [item.id])
                await handler.cancel_run()
                return
            try:
                assert workflow is not None and item.event is not None
                event = self.live.runtime.event_of(workflow, item.event)
            except Exception as exc:
                logger.warning("inbox item %s of run %s cannot be read (%s); dropped", item.id, handler_id, exc)
                await worker.write(self.store.ack, [item.id])
                continue
            await worker.write(self.store.ack_with_next_append, handler_id, [item.id])
            if self.live.handlers.get(handler_id) is not handler or handler.is_done():
                return
            try:
                # The event's journal record is written next, with the item's removal.
                handler.ctx.send_event(event, item.step)
                self.counts["delivered"] += 1
            except WorkflowRuntimeError as exc:
                logger.warning("inbox item %s of run %s refused by the run (%s); dropped", item.id, handler_id, exc)
                await worker.write(self.store.ack, [item.id])

    async def wait_delivered(self, handler_id: str, item_id: int, timeout: float) -> bool:
        """Wait until another replica's owner took the inbox item (True), or the run ended or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        key = f"inbox:{handler_id}"
        while True:
            changed = self.live.hub.future(key)
            ended = self.live.hub.future(handler_id)
            if not await self.worker.read(self.store.pending, item_id):
                return True
            row = await self.worker.read(self.store.get_handler, handler_id)
            if row is None or row.status != "running":
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait([changed, ended], timeout=min(left, self.interval),
                               return_when=asyncio.FIRST_COMPLETED)


__all__ = ["ReplicaPlacement", "store_error_of"]
