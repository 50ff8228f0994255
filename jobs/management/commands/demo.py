from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand, CommandError

from accounts.models import Account
from accounts.storage import storage_local_copy
from jobs import services
from jobs.maintenance.presets import presets_seed
from jobs.management.commands.render_job import progress_printer
from jobs.models import ExecutionStatus, Job, Orientation
from jobs.render.loop import execution_run
from topics.models import Topic
from voices.models import Language, Voice

ARTICLE = Path(__file__).resolve().parents[2] / "demo" / "article_zh.txt"


class Command(BaseCommand):
    help = "Render the demo video from a bundled Chinese article (or --text FILE) and print the MP4's path."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--text", type=Path, help="A UTF-8 text file to narrate instead of the bundled article."
        )
        parser.add_argument(
            "--language", help="The text's language code (e.g. en-US, es-ES); detected when left out."
        )
        parser.add_argument("--vertical", action="store_true", help="Render 768x1360 instead of 1360x768.")

    def handle(self, *args, text: Path | None, language: str | None, vertical: bool, **options) -> None:
        source = text or ARTICLE
        try:
            content = source.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise CommandError(f"Cannot read {source}: {error}") from error
        presets_seed()
        languages = Language.objects.filter(team=None)
        if language:
            chosen = languages.filter(code__iexact=language).first()
            if chosen is None:
                known = ", ".join(languages.values_list("code", flat=True))
                raise CommandError(f"No language {language!r}; known languages: {known}")
        else:
            chosen = services.language_detect(content=content, languages=languages)
            if chosen is None:
                raise CommandError(f"Cannot tell which language {source} is in; pass --language.")
        voice = services.voice_for_language(language=chosen, voices=Voice.objects.filter(team=None))
        if voice is None:
            raise CommandError(f"No voice speaks {chosen}.")
        self.stdout.write(f"Language: {chosen} ({'given' if language else 'detected'}), voice {voice.name}")
        orientation = Orientation.VERTICAL if vertical else Orientation.HORIZONTAL
        fields = {
            "content": content,
            "language": chosen,
            "voice": voice,
            "topic": Topic.objects.get(team=None, name="Health tips"),
            "account": Account.objects.get(team=None, username="demo-channel"),
            "orientation": orientation,
            "speech_speed": 1.0,
            "publish_title": "每天一杯温水的好处" if source == ARTICLE else source.stem,
        }
        title = f"Demo: {source.stem} ({orientation})"
        job = Job.objects.alive().filter(team=None, title=title).first()
        if job is None:
            job = services.job_create(user=None, team=None, title=title, **fields)
        else:
            job = services.job_update(job=job, user=None, **fields)
        self.stdout.write(f"Rendering job {job.pk} «{job.title}»")
        execution = services.execution_create(job=job)
        execution = execution_run(execution=execution, on_progress=progress_printer(self.stdout))
        self.stdout.write("")
        if execution.status != ExecutionStatus.SUCCESS:
            raise CommandError(f"The demo render failed: {execution.detail}")
        # Local storage prints its own paths; S3 prints a signed link and a downloaded copy.
        copies = Path(settings.WORK_ROOT) / "demo"
        cover = storage_local_copy(default_storage, execution.results["cover"], copies)
        self.stdout.write(f"{execution.detail}. Cover: {cover}")
        if hasattr(default_storage, "bucket_name"):
            self.stdout.write(f"Video link: {default_storage.url(execution.results['video'])}")
        self.stdout.write(str(storage_local_copy(default_storage, execution.results["video"], copies)))
