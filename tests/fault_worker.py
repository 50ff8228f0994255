"""A render worker with faults injected into its steps, for tests/jobs/test_faults.py.

    FAULTS='{"subtitles": {"raise": "bad extra value"}}' python -m tests.fault_worker run_jobs ...

FAULTS maps a step name to what happens each time the step runs, before the real step:
  "raise": message   raise ValueError(message): an error no rule knows (a bug, a bad `extra` value)
  "silent_s": s      sleep s seconds without a word (a model load, FunASR, a large upload)
  "busy_s": s        work s seconds, reporting progress and checking for cancel every 0.1 s
  "log": path        append "<step> <pid> <unix time>" to the file first
and under the name "store", for the first output stored whose key ends with "match":
  "log": path, "pause_s": s   append "store <key> <unix time>" to the file, then wait s seconds first
Then it runs the Django management command named by its arguments (run_jobs, qcluster, ...).
"""

import json
import os
import sys
import time
from dataclasses import replace


def inject(faults: dict[str, dict]) -> None:
    from jobs import steps
    from media_engine.errors import Cancelled

    faults = dict(faults)
    if "store" in faults:
        _pause_a_store(steps, faults.pop("store"))
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


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "batchvideo.settings")
    import django

    django.setup()
    inject(json.loads(os.environ.get("FAULTS") or "{}"))
    from django.core.management import execute_from_command_line

    execute_from_command_line(["manage.py", *sys.argv[1:]])


if __name__ == "__main__":
    main()
