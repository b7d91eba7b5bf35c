"""Ids derived from other ids (``schemas.ids.derived_id``): readable while they fit, hashed (never
cut) when they would not, and collision-free at any length."""

from __future__ import annotations

import pytest

from schemas.events import MAX_ID_LENGTH
from schemas.ids import derived_id


def test_derived_ids_are_collision_free_at_any_length():
    assert derived_id("desk", "tx-1", 1, 3) == "desk:tx-1:1:3"
    assert derived_id("inline", "tx-1") == "inline:tx-1"
    seen: dict[str, tuple] = {}
    stem = "a" * 200
    sources = [stem[:n] for n in range(1, 200)] + [stem + "b", "#a", "#" + "0" * 64, "a:1"]
    for source in sources:  # a prefix always takes the same number of qualifiers
        for qualifiers in ((), (1,), (13,), (1, 3), (11, 3), (1, 13)):
            made = derived_id(f"p{len(qualifiers)}", source, *qualifiers)
            assert len(made) <= MAX_ID_LENGTH
            assert seen.setdefault(made, (source, qualifiers)) == (source, qualifiers), made
    # A plain id can never spell a hashed one: a source that looks hashed is hashed itself.
    hashed = derived_id("inline", "z" * 300)
    assert hashed.startswith("inline:#") and len(hashed) == len("inline:#") + 64
    assert derived_id("inline", hashed.removeprefix("inline:")) != hashed
    with pytest.raises(ValueError):
        derived_id("a:b", "x")


def test_a_replayed_label_of_the_longest_id_is_a_valid_label_event():
    from producer.labels import label_event
    from schemas.events import LabelV1

    tid = "r" * MAX_ID_LENGTH
    label = LabelV1.model_validate_json(label_event(tid, 10.0, 3600.0, "1h"))
    assert label.transaction_id == tid and label.label_id == derived_id("replay", tid)
