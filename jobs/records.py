"""The one reader and writer of `JobExecution.steps`: what each step of a render recorded.

A step record is a JSON object: `status` (running, done, reused, failed, cancelled), `started_at`,
`finished_at`, `duration_s`, `input_hash`, `outputs` (name -> storage key), `data` (what later steps
and re-renders need: the narration's sentences, compose's chunks and timeline, ...), and, when it
failed, `error` and `tries`. Rows written by older releases may lack any of these; every reader
goes through `StepRecord`, which fills the gaps.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from jobs.models import Job, JobExecution

FINISHED = ("done", "reused")
# The newest renders looked at for reusable steps or the storyboard's narration.
LOOK_BACK = 20


@dataclass(frozen=True)
class StepRecord:
    name: str
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.raw.get("status") or "")

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    @property
    def outputs(self) -> dict[str, str]:
        outputs = self.raw.get("outputs")
        return (
            {name: key for name, key in outputs.items() if isinstance(key, str) and key}
            if isinstance(outputs, dict)
            else {}
        )

    @property
    def data(self) -> dict[str, Any]:
        data = self.raw.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def chunks(self) -> dict[str, int] | None:
        """{"reused": r, "total": t} for a step that made video chunks (compose), else None. A
        reused step encoded nothing: all its chunks count as reused."""
        chunks = self.data.get("chunks")
        if not isinstance(chunks, list):
            return None
        reused = len(chunks) if self.status == "reused" else int(self.data.get("chunks_reused") or 0)
        return {"reused": reused, "total": len(chunks)}

    def summary(self) -> dict[str, Any]:
        """What the API and the progress feed show of a step."""
        return {
            name: self.raw.get(name)
            for name in ("status", "started_at", "finished_at", "duration_s", "error")
        }


def step_records(steps: dict | None) -> dict[str, StepRecord]:
    """Every step an execution recorded, in the order recorded."""
    return {name: StepRecord(name, raw) for name, raw in (steps or {}).items() if isinstance(raw, dict)}


def step_record(steps: dict | None, name: str) -> StepRecord:
    """The record of step `name` (an empty one when the step never ran)."""
    raw = (steps or {}).get(name)
    return StepRecord(name, raw if isinstance(raw, dict) else {})


def step_write(execution: JobExecution, name: str, raw: dict[str, Any]) -> None:
    """Record step `name` on the execution (in memory; the render saves it, fenced)."""
    execution.steps = {**(execution.steps or {}), name: raw}


def referenced_keys(results: dict | None, steps: dict | None) -> set[str]:
    """Storage keys an execution refers to: its results and every step record's outputs."""
    keys = {value for value in (results or {}).values() if isinstance(value, str) and value}
    for record in step_records(steps).values():
        keys |= set(record.outputs.values())
    return keys


def recent_steps(job: Job) -> Iterator[tuple[dict, dict]]:
    """(steps, results) of the job's newest executions, newest first."""
    yield from job.executions.order_by("-id").values_list("steps", "results")[:LOOK_BACK]


def storyboard_layout_steps(job: Job) -> Iterator[dict]:
    """The steps of the job's renders that laid out the storyboard (their segments step finished)
    and recorded a narration, newest first: the storyboard's timing comes from the first."""
    for steps, _results in recent_steps(job):
        if step_record(steps, "segments").finished and step_record(steps, "narration").outputs.get(
            "narration"
        ):
            yield steps
