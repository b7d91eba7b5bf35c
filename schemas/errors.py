"""The one user-facing error type: the CLI prints its message on one line and exits non-zero."""


class FraudstreamError(Exception):
    """A problem with input or environment that the user can fix; the message names it."""

    exit_code = 2
