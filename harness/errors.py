"""The base of every error that is the user's to fix (a name, a file, a device, an option).

The command line prints such an error's message alone and exits with status 2; anything else is a
bug in harness and keeps its traceback.
"""


class HarnessError(Exception):
    """An error in what the user asked for; the message says what was wrong and what was expected."""


def plain(text: str) -> str:
    """``text`` without terminal escape sequences (libraries colour their messages: torch's unpickling
    errors, for one), which would print as ``[1m...[0m`` where they are not interpreted."""
    import re

    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)
