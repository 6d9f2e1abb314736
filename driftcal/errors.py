"""Exceptions that carry a message meant for an operator, not a traceback."""


class DriftcalError(Exception):
    """Base class of every error driftcal reports in one readable line."""


class InputError(DriftcalError):
    """Input data or arguments are unusable (wrong shape, NaN/Inf, missing file, ...)."""
