import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Measure one part of BatchVideo and print its figures; the last line is the summary."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "target",
            choices=[
                "compose",
                "queue",
                "websocket",
                "api",
                "images",
                "i2v",
                "rerender",
                "validation",
                "farm",
            ],
        )
        parser.add_argument(
            "--random-weights",
            action="store_true",
            help="images, i2v: full-size Flux.1-dev / LTX-Video with random weights (needs an NVIDIA GPU).",
        )
        parser.add_argument(
            "--minutes",
            type=float,
            default=10.0,
            help="rerender, farm: the job's length in minutes of narration (10 by default).",
        )
        parser.add_argument(
            "--karaoke",
            action="store_true",
            help="rerender: on a channel whose captions highlight the spoken word (subtitle_karaoke).",
        )

        parser.add_argument(
            "--jobs", type=int, default=20, help="farm: the batch of jobs with Flux pictures (20 by default)."
        )
        parser.add_argument(
            "--renders",
            type=int,
            default=50,
            help="farm: renders queued while webhooks wait (50 by default).",
        )
        parser.add_argument(
            "--claimers", type=int, default=32, help="farm: concurrent claimers of empty executions (32)."
        )

    def handle(self, *args, target: str, **options) -> None:
        try:
            lines = getattr(self, f"_{target}")(**options)
        except RuntimeError as error:
            raise CommandError(str(error)) from error
        for line in lines:
            self.stdout.write(line)

    def _compose(self, **options) -> list[str]:
        from jobs.benchmarks.compose import compose_benchmark, format_compose_line

        self.stdout.write("Rendering 60 s of narration over 12 stills, then re-encoding it (the floor)...")
        with tempfile.TemporaryDirectory() as work_dir:
            return [format_compose_line(compose_benchmark(Path(work_dir)))]

    def _rerender(self, minutes: float, karaoke: bool, **options) -> list[str]:
        from jobs.benchmarks.rerender import format_rerender_details, format_rerender_line, rerender_benchmark

        if not 0 < minutes <= 60:
            raise CommandError("--minutes must be more than 0 and at most 60.")
        captions = " with karaoke captions" if karaoke else ""
        self.stdout.write(
            f"A {minutes:g}-minute job{captions}: full render, a new picture, an edited sentence, a preview..."
        )
        result = rerender_benchmark(minutes=minutes, karaoke=karaoke)
        return [format_rerender_details(result), format_rerender_line(result)]

    def _validation(self, **options) -> list[str]:
        from jobs.benchmarks.validation import format_validation_line, validation_benchmark

        self.stdout.write(
            "Checking 10,000 characters of prose, punctuation and symbols, then a batch of them..."
        )
        return [format_validation_line(validation_benchmark())]

    def _farm(self, minutes: float, jobs: int, renders: int, claimers: int, **options) -> list[str]:
        from jobs.benchmarks.farm import farm_benchmark, format_farm_details, format_farm_line

        if not 0 < minutes <= 60 or min(jobs, renders, claimers) < 1:
            raise CommandError("--minutes must be in (0, 60]; --jobs, --renders and --claimers at least 1.")
        self.stdout.write(
            f"Simulated hosts, one core each: a {minutes:g}-minute composition on 1 and 2 CPU hosts, "
            f"{jobs} Flux jobs on a gpu host, webhooks with {renders} renders queued, {claimers} claimers..."
        )
        result = farm_benchmark(
            minutes=minutes,
            gpu_jobs=jobs,
            webhook_renders=renders,
            webhook_events=min(20, renders),
            claimers=claimers,
        )
        return [format_farm_details(result), format_farm_line(result)]

    def _queue(self, **options) -> list[str]:
        from jobs.benchmarks.queue import format_queue_line, queue_benchmark

        self.stdout.write("Running 200 executions with 1, 2 and 4 workers...")
        return [format_queue_line(queue_benchmark())]

    def _websocket(self, **options) -> list[str]:
        from jobs.benchmarks.websocket import format_websocket_line, websocket_benchmark

        self.stdout.write("200 websocket clients watching 20 jobs through daphne and Redis...")
        return [format_websocket_line(websocket_benchmark())]

    def _api(self, **options) -> list[str]:
        from jobs.benchmarks.api import api_benchmark, format_api_line

        self.stdout.write("10,000 jobs, 16 clients for 20 s against a real server...")
        return [format_api_line(api_benchmark())]

    def _images(self, random_weights: bool, **options) -> list[str]:
        from jobs.benchmarks.images import images_benchmark
        from media_engine.errors import MediaError

        if not random_weights:
            raise CommandError("Only --random-weights is supported: no model weights ship with BatchVideo.")
        try:
            return images_benchmark(random_weights=True)
        except MediaError as error:
            raise CommandError(str(error)) from error

    def _i2v(self, random_weights: bool, **options) -> list[str]:
        from jobs.benchmarks.animation import i2v_benchmark
        from media_engine.errors import MediaError

        if not random_weights:
            raise CommandError("Only --random-weights is supported: no model weights ship with BatchVideo.")
        self.stdout.write(
            "LTX-Video 2B with random weights: a 5 s clip (121 frames, 768x448, 40 steps), twice..."
        )
        try:
            return i2v_benchmark()
        except MediaError as error:
            raise CommandError(str(error)) from error
