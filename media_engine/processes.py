"""Child processes that die with the worker that started them.

ffmpeg, ffprobe and the espeak-ng child run in a session of their own, so that a cancel or a
timeout kills them and only them. A worker killed outright (kill -9, the OOM killer) can clean up
nothing, and its children would run on to the end, writing into folders nobody owns. So every
child is started through util-linux's `setpriv --pdeathsig KILL`, which asks the kernel to kill it
when the thread that started it dies. It is set in `setpriv` itself, just before the exec: no
Python code runs between fork and exec (a `preexec_fn` is unsafe in a threaded worker). Where
`setpriv` is missing (not Linux) children are started as they are.
"""

import os
import shutil
from collections.abc import Sequence

SETPRIV = shutil.which("setpriv")


def bound_to_parent(command: Sequence[str | os.PathLike]) -> list[str]:
    """`command`, run so that it is killed when the thread that starts it dies."""
    command = [str(part) for part in command]
    return [SETPRIV, "--pdeathsig", "KILL", "--", *command] if SETPRIV else command
