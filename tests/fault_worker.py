"""A render worker with faults injected into its steps, for tests/jobs/test_faults.py.

    FAULTS='{"subtitles": {"raise": "bad extra value"}}' python -m tests.fault_worker run_jobs ...

FAULTS maps a step name to what happens each time the step runs, before the real step:
  "raise": message   raise ValueError(message): an error no rule knows (a bug, a bad `extra` value)
  "silent_s": s      sleep s seconds without a word (a model load, FunASR, a large upload)
  "busy_s": s        work s seconds, reporting progress and checking for cancel every 0.1 s
  "log": path        append "<step> <pid> <unix time>" to the file first
and under the name "store", for the first output stored whose key ends with "match":
  "log": path, "pause_s": s   append "store <key> <unix time>" to the file, then wait s seconds first
and under the name "writes", a path: every render this process starts appends
  "claim <pid> <execution> <attempt> - <unix time>", and every file this process writes, renames,
  links or deletes under MEDIA_ROOT (the local storage) appends
  "<op> <pid> <execution> <attempt> <storage key> <unix time>" (execution and attempt of the
  render it was part of, "-" outside one);
and under the name "chunks": "log": path, appends "chunk <name> <pid> <unix time>" for every chunk
  this process finishes making (a composition's own or one of the fan-out's `make_chunk` tasks);
  "kill_after": n, this process kills itself (SIGKILL) right after its n-th `make_chunk` task made
  its chunk, before the next (the planner's own chunks do not count).
Then it runs the Django management command named by its arguments (run_jobs, qcluster, ...).
"""

import json
import os
import signal
import sys
import time
from dataclasses import replace


def inject(faults: dict[str, dict]) -> None:
    from jobs.render import steps
    from media_engine.errors import Cancelled

    faults = dict(faults)
    if "writes" in faults:
        _log_writes(faults.pop("writes"))
    if "store" in faults:
        _pause_a_store(steps, faults.pop("store"))
    if "chunks" in faults:
        _chunk_faults(faults.pop("chunks"))
    for name, fault in faults.items():
        real = steps.STEPS[name].run

        def run(context, inputs, real=real, name=name, fault=fault):
            if fault.get("log"):
                with open(fault["log"], "a") as log:
                    log.write(f"{name} {os.getpid()} {time.time():.3f}\n")
            time.sleep(fault.get("silent_s", 0))
            end = time.monotonic() + fault.get("busy_s", 0)
            while time.monotonic() < end:
                context.report(name, 0.5, f"{name}: busy")
                if context.cancel():
                    raise Cancelled("cancelled while busy")
                time.sleep(0.1)
            if fault.get("raise"):
                raise ValueError(fault["raise"])
            return real(context, inputs)

        steps.STEPS[name] = replace(steps.STEPS[name], run=run)


def _pause_a_store(steps, fault: dict) -> None:
    real = steps.store
    paused = []

    def store(local_path, key):
        if not paused and key.endswith(fault["match"]):
            paused.append(key)
            with open(fault["log"], "a") as log:
                log.write(f"store {key} {time.time():.3f}\n")
            time.sleep(fault.get("pause_s", 0))
        return real(local_path, key)

    steps.store = store


def _chunk_faults(fault: dict) -> None:
    from jobs.render import fanout
    from media_engine import chunks

    real_make, real_task = chunks.make_chunk, fanout.chunk_make
    made_by_tasks = []

    def make_chunk(job, *args, **kwargs):
        path = real_make(job, *args, **kwargs)
        if fault.get("log"):
            with open(fault["log"], "a") as log:
                log.write(f"chunk {job.name} {os.getpid()} {time.time():.3f}\n")
        return path

    def chunk_make(pk):
        outcome = real_task(pk)
        if outcome == "done":
            made_by_tasks.append(pk)
            if len(made_by_tasks) >= fault.get("kill_after", float("inf")):
                os.kill(os.getpid(), signal.SIGKILL)
        return outcome

    chunks.make_chunk = make_chunk
    fanout.chunk_make = chunk_make


def _log_writes(log_path: str) -> None:
    from django.conf import settings
    from django.core.files.storage import FileSystemStorage

    from jobs.render import loop

    media = os.path.realpath(settings.MEDIA_ROOT)
    current = {"execution": "-", "attempt": "-"}

    def log(op: str, target) -> None:
        target = os.path.realpath(os.fspath(target))
        if target.startswith(media + os.sep):
            with open(log_path, "a") as log_file:
                log_file.write(
                    f"{op} {os.getpid()} {current['execution']} {current['attempt']} "
                    f"{os.path.relpath(target, media)} {time.time():.3f}\n"
                )

    def logged(op: str, real, index: int):
        def call(*args, **kwargs):
            log(op, args[index])
            return real(*args, **kwargs)

        return call

    os.replace = logged("replace", os.replace, 1)
    os.link = logged("link", os.link, 1)
    os.unlink = logged("delete", os.unlink, 0)
    os.remove = logged("delete", os.remove, 0)
    real_save, real_delete = FileSystemStorage._save, FileSystemStorage.delete
    FileSystemStorage._save = lambda self, name, content: (
        log("save", self.path(name)),
        real_save(self, name, content),
    )[1]
    FileSystemStorage.delete = lambda self, name: (log("delete", self.path(name)), real_delete(self, name))[1]
    real_run = loop.execution_run

    def execution_run(*, execution, **kwargs):
        current.update(execution=execution.pk, attempt=execution.attempt)
        with open(log_path, "a") as log_file:
            log_file.write(f"claim {os.getpid()} {execution.pk} {execution.attempt} - {time.time():.3f}\n")
        try:
            return real_run(execution=execution, **kwargs)
        finally:
            current.update(execution="-", attempt="-")

    loop.execution_run = execution_run


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchvideo.settings")
    import django

    django.setup()
    inject(json.loads(os.environ.get("FAULTS") or "{}"))
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
