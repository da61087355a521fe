"""User-facing input errors: one line, exit code 2."""

__all__ = ["InputError", "EXIT_BAD_INPUT"]

EXIT_BAD_INPUT = 2


class InputError(Exception):
    """Bad input from the user (malformed file, unknown name, impossible constraint).

    The command line prints ``error: <message>`` on one line and exits with
    :data:`EXIT_BAD_INPUT`; it never shows a traceback for this class.
    """
