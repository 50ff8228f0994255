from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from jobs import services
from media_engine.errors import MediaError

VIDEO_SUFFIXES = {".mp4", ".mov", ".mkv", ".webm", ".m4v", ".avi"}


class Command(BaseCommand):
    help = "Add every video file in DIR to the shared clip library (tags, source and licence for all)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--tags", default="", help="Comma-separated tags, e.g. landscape,sea")
        parser.add_argument("--source", default="", help="Where the clips come from.")
        parser.add_argument("--licence", default="", help="Their licence.")

    def handle(self, *args, directory: Path, tags: str, source: str, licence: str, **options) -> None:
        if not directory.is_dir():
            raise CommandError(f"{directory} is not a directory.")
        files = sorted(p for p in directory.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise CommandError(f"No video files ({', '.join(sorted(VIDEO_SUFFIXES))}) in {directory}.")
        imported = skipped = 0
        for path in files:
            try:
                clip = services.clip_import(path=path, tags=tags, source=source, licence=licence)
            except MediaError as error:
                skipped += 1
                self.stderr.write(f"skipped {path.name}: {error}")
                continue
            imported += 1
            self.stdout.write(
                f"{path.name}: clip {clip.pk}, {clip.duration_ms / 1000:.1f} s, {clip.width}x{clip.height}"
            )
        self.stdout.write(f"Imported {imported} clip(s), skipped {skipped}.")
        if imported == 0:
            raise CommandError("No clip was imported.")
