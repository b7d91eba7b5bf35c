"""``fraudstream split`` on the keyed layout (TX_DATETIME) and its refusals (pure: files only).
The ULB layout, as the compose services run it, is tested in tests/test_compose.py."""

from __future__ import annotations

import pytest

from schemas.errors import FraudstreamError
from trainer.split import split_file


def test_keyed_rows_split_by_tx_datetime(tmp_path) -> None:
    header = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_FRAUD\n"
    rows = [f"{i},2018-04-0{d} 10:00:00,c{i},t{i},12.5,0\n" for i, d in
            enumerate([3, 1, 4, 2], start=1)]
    csv = tmp_path / "keyed.csv"
    csv.write_text(header + "".join(rows))
    done = split_file(str(csv), tmp_path / "out", 0.5)
    assert not done.sorted_by_time and done.train.rows == done.replay.rows == 2
    assert (tmp_path / "out" / "train.csv").read_text() == header + rows[1] + rows[3]
    assert (tmp_path / "out" / "replay.csv").read_text() == header + rows[0] + rows[2]


def test_refusals_are_one_line(tmp_path) -> None:
    csv = tmp_path / "x.csv"
    csv.write_text("A,B\n1,2\n3,4\n")
    with pytest.raises(FraudstreamError, match="no event time to split by"):
        split_file(str(csv), tmp_path / "o")
    csv.write_text("Time,Amount,Class\n1,2,0\n")
    with pytest.raises(FraudstreamError, match="leaves nothing to train on or nothing to replay"):
        split_file(str(csv), tmp_path / "o")
    with pytest.raises(FraudstreamError, match="--train-share must be between 0 and 1"):
        split_file(str(csv), tmp_path / "o", 1.0)
