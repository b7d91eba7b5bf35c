"""Ids derived from other ids (a label id from a transaction id, …): one rule, collision-free at
any length.

``derived_id("desk", tx, 1, 3)`` is ``"desk:" + tx + ":1:3"`` while that fits in
:data:`~schemas.events.MAX_ID_LENGTH`. When it would not fit (or ``tx`` starts with ``#``), the
source id is replaced by ``#`` and its sha256 (``"desk:#<64 hex>:1:3"``): never cut, so two long
ids sharing a prefix never derive the same id. A plain form never has ``#`` right after the
prefix and a hashed form always has, so the two forms cannot collide either. The qualifiers are
integers (no ``:``) and a prefix always takes the same number of them, so the split is
unambiguous from the right.
"""

from __future__ import annotations

import hashlib

from schemas.events import MAX_ID_LENGTH

HASH_MARK = "#"


def derived_id(prefix: str, source_id: str, *qualifiers: int) -> str:
    """``prefix:source_id[:q…]``, or ``prefix:#sha256(source_id)[:q…]`` when that would be longer
    than :data:`MAX_ID_LENGTH` or ``source_id`` starts with ``#`` (see the module's docstring)."""
    if ":" in prefix or not prefix:
        raise ValueError(f"a derived id's prefix is a word without ':', not {prefix!r}")
    tail = "".join(f":{int(q)}" for q in qualifiers)
    plain = f"{prefix}:{source_id}{tail}"
    if len(plain) <= MAX_ID_LENGTH and not source_id.startswith(HASH_MARK):
        return plain
    digest = hashlib.sha256(source_id.encode("utf-8", "surrogatepass")).hexdigest()
    hashed = f"{prefix}:{HASH_MARK}{digest}{tail}"
    if len(hashed) > MAX_ID_LENGTH:
        raise ValueError(f"prefix and qualifiers too long for a derived id: {hashed!r}")
    return hashed
