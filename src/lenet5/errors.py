"""The one exception type the CLI turns into a clean one-line error."""


class Lenet5Error(Exception):
    """A problem the user can fix: bad input, missing data, a wrong checkpoint.

    The CLI prints ``lenet5: error: <message>`` on stderr and exits non-zero;
    library callers get an ordinary exception with the same message.
    """
