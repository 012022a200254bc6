"""Errors of the order books, in the project's tree (:mod:`networkpype.protocol.errors`)::

    UsageError
    └── UnknownBookError   (KeyError)    a symbol the maintainer does not keep
    RetryableError
    └── BookDataError      (ValueError)  a diff or snapshot that cannot be read as one

A ``BookDataError`` from the venue's data never reaches the consumer as an exception: the
book it concerns is marked not valid (the error's message is the reason) and resynced.
"""

from __future__ import annotations

from networkpype.protocol.errors import RetryableError, UsageError

__all__ = ["BookDataError", "UnknownBookError"]


class UnknownBookError(UsageError, KeyError):
    """The maintainer keeps no book for this symbol: ``add()`` it first."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class BookDataError(RetryableError, ValueError):
    """A depth diff or snapshot the venue plug-in cannot read: a missing or mistyped field,
    a price that is not a finite positive number, a quantity that is negative. The message
    names the field and quotes (a bounded part of) the value."""
