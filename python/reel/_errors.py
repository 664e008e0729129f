"""reel's exceptions: ``reel.Error`` and its subclasses, each with the engine's message."""


class Error(Exception):
    """Anything reel refuses or fails to do; the message says what and why."""


class ConditionFailed(Error):
    """A compare-and-set condition (``if_rev``, ``if_absent``) did not hold; nothing was stored."""


class NotFound(Error, KeyError):
    """No value at a kv path, or no list with a key. Also a ``KeyError``."""

    def __str__(self) -> str:
        # KeyError's own __str__ shows the repr of its argument; show the message.
        return str(self.args[0]) if self.args else ""


class Corrupt(Error):
    """Stored data fails its checksum or cannot be decoded; it is never returned as data."""


class Full(Error):
    """The spool is at capacity and its policy refuses the append, or the disk is full.

    Nothing of the refused append was stored."""


class PermissionDenied(Error):
    """The store may not be written: a read-only directory, or a follower of another store."""


class InvalidArgument(Error, ValueError):
    """An argument is out of range or malformed (a path, a reader name, a size). Also a ``ValueError``."""
