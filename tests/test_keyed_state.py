"""A card's window after a batch (pure): the stored transactions and the batch's, in history
order (ties: stored first, then the batch's in partition order), without those at or before
``keep_us`` before the card's latest — checked against the obvious sort-and-filter over random
batches with late, tied and in-order events."""

from __future__ import annotations

import numpy as np

from scorer.keyed_features import CardWindow, updated_cards


def reference(old: CardWindow | None, mine: list[dict], keep_us: int) -> CardWindow:
    rows = [] if old is None else list(zip(old.times.tolist(), old.amounts.tolist(),
                                           strict=True))
    rows += [(e["time_us"], e["amount"]) for e in mine]
    rows = sorted(rows, key=lambda r: r[0])  # stable: stored first, then the batch's order
    latest = rows[-1][0]
    kept = [r for r in rows if r[0] > latest - keep_us]
    return CardWindow(np.array([t for t, _ in kept], dtype=np.int64),
                      np.array([a for _, a in kept], dtype=np.float64))


def test_updated_cards_equals_sort_and_filter():
    rng = np.random.default_rng(5)
    for _ in range(300):
        keep_us = int(rng.integers(1, 50))
        cards, events = {}, []
        for card in range(int(rng.integers(1, 8))):
            if rng.random() < 0.7:
                times = np.sort(rng.integers(0, 60, int(rng.integers(0, 6))))
                cards[f"c{card}"] = CardWindow(times.astype(np.int64),
                                               rng.uniform(0, 9, len(times)).round(2))
            for _ in range(int(rng.integers(0, 4))):
                events.append({"customer_id": f"c{card}", "time_us": int(rng.integers(20, 80)),
                               "amount": round(float(rng.uniform(0, 9)), 2)})
        rng.shuffle(events)
        got = updated_cards(events, cards, keep_us)
        for card in {e["customer_id"] for e in events}:
            want = reference(cards.get(card), [e for e in events if e["customer_id"] == card],
                             keep_us)
            assert got[card].times.tolist() == want.times.tolist(), (card, keep_us)
            assert got[card].amounts.tolist() == want.amounts.tolist(), (card, keep_us)
        assert set(got) == {e["customer_id"] for e in events}
