"""A batch's rows for one table as columns (one sequence per column), the form the scorer builds
its decision and inline-label rows in and :func:`store.bulk.insert_ignore` writes: no dict and no
datetime object per row. An instant column is a :class:`Micros` (int64 microseconds since the
Unix epoch, UTC) whose storage form is computed for the whole column at once.

Iterating :class:`Columns` gives the rows as dicts (with datetimes), the form a reader or a test
expects; that is the slow path, never the write path.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, overload

import numpy as np

from schemas.times import from_micros


@dataclass(frozen=True)
class Micros:
    """A column of UTC instants: ``us`` ``(n,)`` int64 microseconds since the Unix epoch."""

    us: np.ndarray

    def __len__(self) -> int:
        return len(self.us)

    def take(self, index: np.ndarray) -> Micros:
        return Micros(self.us[index])

    def datetimes(self) -> list[datetime]:
        """The instants as aware datetimes (UTC), equal to those the microseconds came from."""
        return [from_micros(us) for us in self.us.tolist()]

    def sqlite_text(self) -> list[str]:
        """SQLite's stored form of each instant (SQLAlchemy's ``DATETIME`` format for a UTC
        datetime: ``YYYY-MM-DD HH:MM:SS.ffffff``), formatted for the whole column at once."""
        text = np.datetime_as_string(self.us.astype("datetime64[us]"), unit="us")
        return [value.replace("T", " ", 1) for value in text.tolist()]


Column = Sequence[Any] | Micros


class Columns:
    """Rows as named columns of equal length (plain Python values, or a :class:`Micros`)."""

    def __init__(self, columns: Mapping[str, Column]) -> None:
        self.columns: dict[str, Column] = dict(columns)
        lengths = {len(values) for values in self.columns.values()}
        if len(lengths) > 1:
            raise ValueError(f"columns of different lengths: {sorted(lengths)}")
        self._n = lengths.pop() if lengths else 0

    @classmethod
    def from_rows(cls, rows: Sequence[Mapping[str, Any]]) -> Columns:
        """Mappings with the same keys, as columns."""
        names = list(rows[0]) if rows else []
        return cls({name: [row[name] for row in rows] for name in names})

    @property
    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, key: str) -> Column: ...
    @overload
    def __getitem__(self, key: int) -> dict[str, Any]: ...

    def __getitem__(self, key: str | int) -> Column | dict[str, Any]:
        """A column by name, or one row (as a mapping) by position."""
        if isinstance(key, str):
            return self.columns[key]
        return self.take(np.array([range(self._n)[key]])).__iter__().__next__()

    def __setitem__(self, name: str, values: Column) -> None:
        if len(values) != self._n and self.columns:
            raise ValueError(f"column {name!r} has {len(values)} values, not {self._n}")
        self.columns[name] = values
        self._n = len(values)

    def plain(self, name: str) -> list[Any]:
        """One column as Python values (instants as datetimes)."""
        values = self.columns[name]
        return values.datetimes() if isinstance(values, Micros) else list(values)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        names = self.names
        return (dict(zip(names, row, strict=True))
                for row in zip(*(self.plain(n) for n in names), strict=True))

    def take(self, index: np.ndarray) -> Columns:
        """The rows at ``index`` (int positions), in that order."""
        positions = index.tolist()
        return Columns({name: values.take(index) if isinstance(values, Micros)
                        else [values[i] for i in positions]
                        for name, values in self.columns.items()})

    @staticmethod
    def concat(parts: Sequence[Columns | Sequence[Mapping[str, Any]]]) -> Columns:
        """The rows of ``parts`` (same column names) one after the other."""
        parts = [as_columns(part) for part in parts if len(part)]
        if len(parts) <= 1:
            return parts[0] if parts else Columns({})
        names = parts[0].names
        if any(part.names != names for part in parts):
            raise ValueError("cannot concatenate rows with different columns")
        return Columns({name: Micros(np.concatenate([p[name].us for p in parts]))  # type: ignore[union-attr]
                        if all(isinstance(p[name], Micros) for p in parts)
                        else [v for p in parts for v in p.plain(name)] for name in names})


def as_columns(rows: Columns | Sequence[Mapping[str, Any]]) -> Columns:
    """``rows`` as :class:`Columns` (mappings with the same keys are turned into columns)."""
    return rows if isinstance(rows, Columns) else Columns.from_rows(rows)
