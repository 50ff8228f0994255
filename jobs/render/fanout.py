"""One video on many hosts: a composition's missing chunks are rows any CPU worker may take.

The worker that plans a composition (`chunks_farm`, the compose step's ChunkStore.farm) shares the
chunks' inputs in the store (media_engine.chunks.share_inputs), writes one ChunkWork row per missing
chunk (the chunk job as JSON) and queues a `make_chunk` task for each on CPU_CLUSTER. Then it makes
chunks itself, COMPOSE_CHUNK_THREADS at a time, claiming rows as the other workers do, until every
row is done; it fetches the chunks the others made and assembles the MP4 (media_engine.chunks).

A row is claimed by compare-and-set (jobs.workitems), and whoever makes it says so every few
seconds (`heartbeat_at`): a row whose worker went silent for CHUNK_STALE_S (killed, paused) is
claimable again, and the planner takes it. A chunk made twice is harmless: the same name, the same
bytes, stored once. A row another worker failed is made by the planner, whose error, if it fails
too, is the render's. Rows live as long as their composition: the planner deletes them once all are
made; a planner that died leaves them to the attempt that takes its render over, which plans the
same chunks (the same names) and finds the ones already made.
"""

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from jobs.files import chunk_store
from jobs.models import ChunkStatus, ChunkWork, JobExecution
from jobs.render.workspace import AttemptFolder
from jobs.workitems import WorkKind
from media_engine import chunks
from media_engine.chunks import CancelCheck, ChunkJob, ChunkStore, ProgressCallback
from media_engine.errors import Cancelled

logger = logging.getLogger(__name__)

CHUNK_TASK = "jobs.tasks.make_chunk"
# How often a chunk's maker says it is still at it (a fifth of the stale time, at most 5 s).
BEAT_S = 5.0


def _stale() -> Q:
    before = timezone.now() - timedelta(seconds=settings.CHUNK_STALE_S)
    return Q(status=ChunkStatus.MAKING, heartbeat_at__lt=before)


CHUNKS = WorkKind(
    name="chunk",
    model=ChunkWork,
    task=CHUNK_TASK,
    cluster_setting="CPU_CLUSTER",
    due=lambda: Q(status=ChunkStatus.WAITING),
    stale=_stale,
)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def chunk_threads() -> int:
    """Chunks one worker makes at a time (COMPOSE_CHUNK_THREADS; 0: chunks.CHUNK_WORKERS)."""
    return settings.COMPOSE_CHUNK_THREADS or chunks.CHUNK_WORKERS


def _beat_every() -> float:
    return min(BEAT_S, settings.CHUNK_STALE_S / 5)


def chunks_farm(execution: JobExecution, made_by: Counter, *, fence: Callable[[], None]) -> chunks.Farm:
    """The compose step's farm: the missing chunks of `execution`'s composition made by every CPU
    worker. `made_by` counts the chunks each worker made (host:pid), for the step's record; `fence`
    is the render's claim check (a worker that lost the render leaves the rows to the new owner)."""

    def farm(
        jobs: list[ChunkJob],
        store: ChunkStore,
        work_dir: Path,
        on_progress: ProgressCallback | None,
        cancel: CancelCheck | None,
        deadline: float,
    ) -> None:
        if len(jobs) < 2:  # nothing to share
            chunks.make_chunks(
                jobs, store, work_dir, on_progress=on_progress, cancel=cancel, deadline=deadline
            )
            made_by[worker_name()] += len(jobs)
            return
        chunks.share_inputs(jobs, store)
        ChunkWork.objects.bulk_create(
            [
                ChunkWork(
                    execution=execution,
                    name=job.name,
                    description=chunks.describe(job, work_dir),
                    seconds=job.seconds,
                )
                for job in jobs
            ],
            ignore_conflicts=True,  # rows an earlier attempt of this execution left
        )
        rows = ChunkWork.objects.filter(execution=execution, name__in=[job.name for job in jobs])
        for pk in rows.exclude(status=ChunkStatus.DONE).order_by("-seconds").values_list("pk", flat=True):
            CHUNKS.wake(pk)
        try:
            _make_with_others(
                rows, {job.name: job for job in jobs}, store, work_dir, on_progress, cancel, deadline
            )
            made_by.update(rows.values_list("worker", flat=True))
        finally:
            if _owner(fence):
                rows.delete()

    return farm


def _owner(fence: Callable[[], None]) -> bool:
    """Whether this worker still holds the render (the fence passes)."""
    try:
        fence()
    except Exception:  # noqa: BLE001 - ClaimLost, or no database to ask: leave the rows
        return False
    return True


def _make_with_others(
    rows,
    jobs: dict[str, ChunkJob],
    store: ChunkStore,
    work_dir: Path,
    on_progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    deadline: float,
) -> None:
    """Claim and make rows here, `chunk_threads()` at a time, until every row is done (here or
    elsewhere). Database work and `keep` only on this thread; the pool runs ffmpeg."""
    me = worker_name()
    stop = threading.Event()
    running: dict[Future, tuple[int, ChunkJob]] = {}
    beaten = 0.0
    with ThreadPoolExecutor(max_workers=chunk_threads(), thread_name_prefix="chunk") as pool:
        try:
            while True:
                for future in [future for future in running if future.done()]:
                    pk, job = running.pop(future)
                    path = future.result()  # a failure here is the render's
                    if store.keep is not None:
                        store.keep(path)
                    ChunkWork.objects.filter(pk=pk).update(
                        status=ChunkStatus.DONE, worker=me, heartbeat_at=timezone.now()
                    )
                states = dict(rows.values_list("name", "status"))
                done = sum(status == ChunkStatus.DONE for status in states.values())
                if on_progress:
                    on_progress(0.98 * done / len(states))
                if done == len(states):
                    return
                while len(running) < chunk_threads():
                    # Waiting, stale, or failed elsewhere (the error, if any, is then this worker's own).
                    next_row = (
                        rows.filter(CHUNKS.claimable_q() | Q(status=ChunkStatus.FAILED))
                        .order_by("-seconds")
                        .values_list("pk", "name", "status")
                        .first()
                    )
                    if next_row is None:
                        break
                    pk, name, status = next_row
                    claimed = (
                        CHUNKS.claim(pk, status=ChunkStatus.MAKING, worker=me, heartbeat_at=timezone.now())
                        if status != ChunkStatus.FAILED
                        else ChunkWork.objects.filter(pk=pk, status=ChunkStatus.FAILED).update(
                            status=ChunkStatus.MAKING, worker=me, heartbeat_at=timezone.now()
                        )
                    )
                    if claimed:
                        job = jobs[name]
                        running[
                            pool.submit(
                                chunks.make_chunk, job, store, work_dir, cancel=stop.is_set, deadline=deadline
                            )
                        ] = (pk, job)
                if running and time.monotonic() - beaten > _beat_every():
                    ChunkWork.objects.filter(pk__in=[pk for pk, _job in running.values()], worker=me).update(
                        heartbeat_at=timezone.now()
                    )
                    beaten = time.monotonic()
                if cancel is not None and cancel():
                    raise Cancelled("cancelled while making chunks")
                chunks.time_left(deadline)
                if running:
                    wait(list(running), timeout=0.5, return_when=FIRST_COMPLETED)
                else:
                    time.sleep(0.5)  # the others' chunks
        except BaseException:
            stop.set()
            for future in running:
                future.cancel()
            raise


def chunk_make(pk: int) -> str:
    """Make the chunk of row `pk` here (the `make_chunk` task), if it is still waiting or its maker
    went silent. What became of it: done, failed, or not claimed (made, taken or gone already)."""
    me = worker_name()
    row = ChunkWork.objects.filter(pk=pk).select_related("execution").first()
    if row is None or not CHUNKS.claim(pk, status=ChunkStatus.MAKING, worker=me, heartbeat_at=timezone.now()):
        return "not claimed"
    mine = ChunkWork.objects.filter(pk=pk, worker=me, status=ChunkStatus.MAKING)
    store = chunk_store()
    beaten = [time.monotonic()]

    def still_mine() -> bool:
        """Says so every few seconds; False once the row is gone (the render ended) or taken."""
        if time.monotonic() - beaten[0] < _beat_every():
            return True
        beaten[0] = time.monotonic()
        return bool(mine.update(heartbeat_at=timezone.now()))

    with AttemptFolder(row.execution_id, row.execution.attempt, worker=f"chunk-{os.getpid()}") as folder:
        job = chunks.restore(row.description, store, folder)
        try:
            if not chunks.chunk_present(store, job.name):
                path = chunks.make_chunk(
                    job,
                    store,
                    folder,
                    cancel=lambda: not still_mine(),
                    deadline=time.monotonic() + settings.FFMPEG_TIMEOUT_S,
                )
                if store.keep is not None:
                    store.keep(path)
        except Cancelled:
            logger.info(
                "chunk %s of execution %s: given up (the render ended or another worker took it)",
                job.name,
                row.execution_id,
            )
            return "not claimed"
        except Exception as error:  # noqa: BLE001 - the planner makes it itself and reports its own error
            logger.exception("chunk %s of execution %s failed here", job.name, row.execution_id)
            mine.update(status=ChunkStatus.FAILED, error=str(error)[:2000])
            return "failed"
    ChunkWork.objects.filter(pk=pk).exclude(status=ChunkStatus.DONE).update(
        status=ChunkStatus.DONE, worker=me, heartbeat_at=timezone.now()
    )
    return "done"
