"""One exception tree for MedFail. Every message names the thing that is wrong.

The CLI turns any :class:`MedFailError` into one line on stderr (``--debug`` shows the
traceback); library code raises these with ``from e`` context and never swallows them.
"""

from __future__ import annotations


class MedFailError(Exception):
    """Base class of every error MedFail raises on purpose."""


class SpecError(MedFailError, ValueError):
    """A task spec (YAML) is malformed or invalid; the message names the file and field."""


class TaskNotFoundError(MedFailError, LookupError):
    """An unknown task id or version; the message lists what exists."""


class BuildError(MedFailError):
    """A task could not be built from its source."""


class DataUnavailableError(BuildError):
    """A task's source data are not on this machine (a credentialed data set, or a file
    that must be downloaded); the message says what is expected and how to obtain it."""


class PatientLeakError(BuildError):
    """A patient would appear in more than one split."""


class ManifestMismatchError(MedFailError):
    """Built or downloaded files do not match their manifest or the spec's pin.

    ``problems`` maps each offending file (relative path) to what is wrong with it.
    """

    def __init__(self, message: str, problems: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.problems = dict(problems or {})


class NotBuiltError(MedFailError):
    """A task version has not been built into the cache yet."""


class HubError(MedFailError):
    """Publishing to or pulling from a remote failed."""


class ModelLoadError(MedFailError):
    """A model file could not be loaded, or was refused as unsafe."""


class PredictionError(MedFailError, ValueError):
    """Model outputs are unusable (NaN, wrong shape, out of [0, 1], ids missing); the
    message names the split and the first offending sample."""


class CaseError(MedFailError, ValueError):
    """A failure-case file is malformed, or the catalogue has a duplicate id."""


def one_line(error: BaseException) -> str:
    """A third-party error's message on one line (its whitespace runs, newlines included,
    become single spaces), for embedding in a MedFail error; its type name if it has none."""
    return " ".join(str(error).split()) or type(error).__name__
