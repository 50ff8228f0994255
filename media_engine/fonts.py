"""Where the fonts are: one CJK-capable font for subtitles, cards, titles and covers."""

from functools import cache
from pathlib import Path

from .errors import MediaError

# fonts-noto-cjk first: it covers Chinese, Japanese, Korean and Latin in one file.
CANDIDATES = (
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Bold.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
)
# The family name libass asks fontconfig for.
FAMILY = "Noto Sans CJK SC"


@cache
def default_font_path() -> Path:
    for candidate in CANDIDATES:
        path = Path(candidate)
        if path.exists():
            return path
    raise MediaError("no usable font found: install fonts-noto-cjk")
