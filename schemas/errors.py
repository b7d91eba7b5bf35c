"""The one user-facing error type: the CLI prints its message on one line and exits non-zero."""


class FraudstreamError(Exception):
    """A problem with input or environment that the user can fix; the message names it."""

    exit_code = 2


def first_line(exc: BaseException) -> str:
    """The first non-blank line of an error's message (its type's name when it has none): the
    one line a log entry or a user-facing error quotes."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
