"""kvspool's Python class on reel: change ``import kvspool`` to
``from reel.compat import kvspool`` and the program runs unchanged.

    kv = kvspool.Kvspool("spool")
    kv.write({"day": "Wed", "temp": "37"})
    d = kv.read()          # blocks until a record is there

Differences from kvspool, each deliberate:

- values keep their JSON type: a string stays a string, but an int written as an int
  reads back as an int (kvspool turned everything into strings);
- the reader's position is persisted after each ``read()`` under the reader name
  ``"default"`` (shared with ``reel read DIR``), so a restarted reader resumes where it
  stopped; pass ``reader=`` to keep several independent readers;
- nothing is lost when the writer outruns a reader until the spool's capacity is
  reached (kvspool's drop-oldest attrition applies only then, and is counted).
"""

from typing import Any, Dict, Optional

from .. import _reel

__all__ = ["Kvspool"]


class Kvspool:
    """A spool directory, for writing dictionaries to it and reading them back.

    The directory is created with reel's defaults if it holds no spool. ``read()`` opens
    the named reader on first use, so a writer-only process never holds it.
    """

    def __init__(self, dir: str, reader: str = "default") -> None:
        self._spool = _reel.Spool(dir)
        self._reader_name = reader
        self._reader: Optional[_reel.Reader] = None

    def write(self, d: Dict[str, Any]) -> None:
        """Appends the dictionary ``d`` as one record."""
        if not isinstance(d, dict):
            raise TypeError(f"Kvspool.write takes a dict, not {type(d).__name__}")
        self._spool.append(d)

    def read(self, blocking: bool = True) -> Optional[Dict[str, Any]]:
        """The next dictionary, waiting for one to be written unless ``blocking=False``
        (then ``None`` when there is none). Its position is committed before it is
        returned."""
        if self._reader is None:
            self._reader = self._spool.reader(self._reader_name)
        rec = self._reader.next(timeout=None if blocking else 0)
        if rec is None:
            return None
        self._reader.commit()
        return rec.value

    def close(self) -> None:
        """Releases the reader (another process may then read under its name)."""
        if self._reader is not None:
            self._reader.close()
            self._reader = None
