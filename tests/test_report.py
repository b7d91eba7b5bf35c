"""Tests of trainer.report: PNG files, HTML content, robustness to partial inputs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from trainer.report import (
    PER_TRANSACTIONS,
    THRESHOLD_FREE_METRICS,
    DataInfo,
    RunReport,
    confusion_counts,
    format_metric,
    render_report,
    threshold_curve,
)
from trainer.report_html import why_not_half

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
EPOCHS = 6


def _history(rng: np.random.Generator, keys: tuple[str, ...] | None = None) -> dict:
    """Plausible Keras history: decreasing loss, metrics rising towards 1."""
    e = np.arange(1, EPOCHS + 1)
    hist = {"loss": 0.5 * np.exp(-e / 3) + 0.01, "val_loss": 0.5 * np.exp(-e / 4) + 0.02}
    for name, start in (("prc", 0.4), ("precision", 0.5), ("recall", 0.5), ("auc", 0.85)):
        curve = 1 - (1 - start) * np.exp(-e / 3)
        hist[name] = np.clip(curve + rng.normal(0, 0.01, EPOCHS), 0, 1)
        hist["val_" + name] = np.clip(curve - 0.03 + rng.normal(0, 0.02, EPOCHS), 0, 1)
    hist = {k: [float(x) for x in v] for k, v in hist.items()}
    return hist if keys is None else {k: v for k, v in hist.items() if k in keys}


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float) -> dict:
    out = {}
    for at, t in (("threshold", threshold), ("0.5", 0.5)):
        hit = p >= t
        tp, fp = int(np.sum(hit & (y == 1))), int(np.sum(hit & (y == 0)))
        fn, tn = int(np.sum(~hit & (y == 1))), int(np.sum(~hit & (y == 0)))
        out[at] = {
            "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "accuracy": (tp + tn) / len(y),
            "precision": tp / max(tp + fp, 1),
            "recall": tp / max(tp + fn, 1),
            "auc": 0.95 + 0.001 * tp / max(tp + fn, 1),
            "prc": 0.7 + 0.001 * tp / max(tp + fp, 1),
            "brier": float(np.mean((p - y) ** 2)),
            "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
        }
    return out


def _run(name: str, seed: int, *, history: dict | None = None, n: int = 4000,
         threshold: float | None = None, epochs_max: int | None = None) -> RunReport:
    """A run with ~3 % positives and scores that separate the classes."""
    rng = np.random.default_rng(seed)

    def split(size: int) -> tuple[np.ndarray, np.ndarray]:
        y = (rng.random(size) < 0.03).astype(int)
        p = 1 / (1 + np.exp(-(rng.normal(0, 1, size) + 3.5 * y - 3)))
        return y, p

    (y_tr, p_tr), (y_va, p_va), (y_te, p_te) = split(n), split(n // 2), split(n // 2)
    threshold = 0.42 + seed / 100 if threshold is None else threshold
    return RunReport(
        name=name,
        history=_history(rng) if history is None else history,
        threshold=threshold,
        threshold_policy="max-f1",
        metrics={"val": _metrics(y_va, p_va, threshold), "test": _metrics(y_te, p_te, threshold)},
        y_train=y_tr, p_train=p_tr, y_test=y_te, p_test=p_te, epochs_max=epochs_max,
    )


def _check_pngs_and_html(html_path: Path) -> str:
    """Every PNG is a real PNG, and the HTML references exactly the PNGs on disk."""
    out_dir = html_path.parent
    pngs = {p.name for p in out_dir.glob("*.png")}
    assert pngs
    for name in pngs:
        data = (out_dir / name).read_bytes()
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 5000, name
    html = html_path.read_text(encoding="utf-8")
    srcs = set(re.findall(r'<img src="([^"]+)"', html))
    assert srcs == pngs
    assert "<script" not in html.lower()
    assert "http://" not in html and "https://" not in html
    return html


def _assert_test_metrics_shown(html: str, run: RunReport) -> None:
    for at in ("threshold", "0.5"):
        for name, value in run.metrics["test"][at].items():
            if at == "0.5" and name in THRESHOLD_FREE_METRICS:
                continue  # shown once, in the threshold-free table
            assert f"<td>{format_metric(name, value)}</td>" in html or (
                f'<td class="run">{format_metric(name, value)}</td>' in html
            ), (run.name, at, name)


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[RunReport], Path]:
    runs = [_run("baseline", 1), _run("weighted", 2), _run("oversample", 3)]
    out = tmp_path_factory.mktemp("report3") / "nested" / "dir"
    return runs, render_report(out, runs, version=7)


def test_three_runs_files(three_runs: tuple[list[RunReport], Path]) -> None:
    runs, html_path = three_runs
    assert html_path == html_path.parent / "index.html"
    names = {p.name for p in html_path.parent.glob("*.png")}
    expected = {"roc.png", "prc.png", "threshold.png"} | {
        f"{kind}_{r.name}.png" for r in runs for kind in ("loss", "metrics", "cm")
    }
    assert names == expected
    _check_pngs_and_html(html_path)


def test_three_runs_html_content(three_runs: tuple[list[RunReport], Path]) -> None:
    runs, html_path = three_runs
    html = html_path.read_text(encoding="utf-8")
    for run in runs:
        assert run.name in html
        assert f"{run.threshold:.4f}" in html
        _assert_test_metrics_shown(html, run)
    assert "max-f1" in html
    # thresholds 0.43..0.45: the "why not 0.5" text says below, not the fixed "over-flag" text
    assert "below 0.5" in html and "over-flag" not in html
    assert "model version 7" in html
    assert re.search(r"generated \d{4}-\d{2}-\d{2}", html)
    # one header cell per run, in the given order
    heads = re.findall(r'<th colspan="4" class="run">([^<]+)</th>', html)
    assert heads == [r.name for r in runs]


def test_one_run(tmp_path: Path) -> None:
    run = _run("weighted", 5)
    html = _check_pngs_and_html(render_report(tmp_path, [run], title="solo"))
    assert {p.name for p in tmp_path.glob("*.png")} == {
        "loss_weighted.png", "metrics_weighted.png", "cm_weighted.png", "roc.png", "prc.png",
        "threshold.png",
    }
    assert "<title>solo</title>" in html
    assert "model version" not in html
    _assert_test_metrics_shown(html, run)


def test_missing_history_keys(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    runs = [
        _run("onlyloss", 1, history=_history(rng, ("loss",))),
        _run("noloss", 2, history=_history(rng, ("val_auc", "recall", "val_recall"))),
        _run("empty", 3, history={}),
    ]
    html = _check_pngs_and_html(render_report(tmp_path, runs))
    names = {p.name for p in tmp_path.glob("*.png")}
    assert {"loss_onlyloss.png", "metrics_noloss.png"} <= names
    assert not names & {"metrics_onlyloss.png", "loss_noloss.png",
                        "loss_empty.png", "metrics_empty.png"}
    assert {f"cm_{r.name}.png" for r in runs} <= names
    for run in runs:
        assert run.name in html


def test_escapes_names_and_missing_metrics(tmp_path: Path) -> None:
    base = _run("x", 4)
    run = RunReport(
        name="<b>", history=base.history, threshold=base.threshold,
        threshold_policy="max-f1 & <friends>",
        metrics={"test": {"threshold": {"tp": 3.0}}},  # val and most metrics missing
        y_train=base.y_train, p_train=base.p_train, y_test=base.y_test, p_test=base.p_test,
    )
    html = _check_pngs_and_html(render_report(tmp_path, [run], title='a "quoted" <title>'))
    assert "<b>" not in html
    assert "&lt;b&gt;" in html
    assert "max-f1 &amp; &lt;friends&gt;" in html
    assert "&lt;title&gt;" in html
    assert "<td>—</td>" in html
    assert (tmp_path / "cm_b.png").exists()


def test_single_class_split_does_not_crash(tmp_path: Path) -> None:
    base = _run("allneg", 6)
    run = RunReport(
        name="allneg", history=base.history, threshold=0.5, threshold_policy="fixed",
        metrics=base.metrics, y_train=np.zeros_like(base.y_train), p_train=base.p_train,
        y_test=base.y_test, p_test=base.p_test,
    )
    _check_pngs_and_html(render_report(tmp_path, [run]))


def test_duplicate_and_unsafe_names_get_distinct_files(tmp_path: Path) -> None:
    runs = [_run("a/b", 1, n=1000), _run("a b", 2, n=1000)]
    render_report(tmp_path, runs)
    cms = sorted(p.name for p in tmp_path.glob("cm_*.png"))
    assert cms == ["cm_a_b-2.png", "cm_a_b.png"]


def test_no_runs_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="at least one run"):
        render_report(tmp_path, [])


@pytest.mark.parametrize(
    ("name", "value", "text"),
    [("tp", 56841.0, "56,841"), ("precision", 0.123456, "0.1235"),
     ("brier", 0.00081234, "0.0008123"), ("auc", float("nan"), "—"), ("fn", None, "—")],
)
def test_format_metric(name: str, value: float | None, text: str) -> None:
    assert format_metric(name, value) == text


def test_confusion_counts_match_metrics() -> None:
    run = _run("t", 7, n=2000)
    for at, t in (("threshold", run.threshold), ("0.5", 0.5)):
        m = run.metrics["test"][at]
        cm = confusion_counts(run.y_test, run.p_test, t)
        assert cm.tolist() == [[m["tn"], m["fp"]], [m["fn"], m["tp"]]]
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.1, 0.7, 0.7, 0.69, 0.9])
    assert confusion_counts(y, p, 0.7).tolist() == [[1, 1], [1, 2]]


# ----------------------------------------------------------------------------- for a person


def _tables(html: str) -> list[str]:
    return re.findall(r"<table>.*?</table>", html, flags=re.S)


def test_threshold_free_metrics_are_shown_once(three_runs: tuple[list[RunReport], Path]) -> None:
    runs, html_path = three_runs
    free, by_threshold = _tables(html_path.read_text(encoding="utf-8"))
    for name in THRESHOLD_FREE_METRICS:
        assert f'<th class="metric">{name}</th>' in free
        assert f'<th class="metric">{name}</th>' not in by_threshold
    for run in runs:  # threshold-free values are those of the threshold evaluation, val and test
        assert format_metric("auc", run.metrics["test"]["threshold"]["auc"]) in free
    assert "@ 0.5" in by_threshold and "@ 0.5" not in free


@pytest.mark.parametrize("threshold", [0.036, 0.2])
def test_why_not_half_below(threshold: float) -> None:
    run = _run("weighted", 3, threshold=threshold)
    text = why_not_half(run)
    assert f"The threshold {threshold:.3g} was chosen as the threshold with the best F1" in text
    assert "below 0.5" in text and "miss frauds" in text and "over-flag" not in text
    cm_t, cm_half = (confusion_counts(run.y_test, run.p_test, t) for t in (threshold, 0.5))
    frauds = int(cm_t[1].sum())
    assert f"catches {int(cm_t[1, 1]):,} of {frauds:,} frauds" in text
    assert f"0.5 flags {int(cm_half[0, 1] + cm_half[1, 1]):,} test transactions" in text


def test_why_not_half_above_and_at() -> None:
    run = _run("weighted", 3, threshold=0.9)
    text = why_not_half(run)
    assert "above 0.5" in text and "over-flag" in text
    fp_half = int(confusion_counts(run.y_test, run.p_test, 0.5)[0, 1])
    assert f"({fp_half:,} legitimate" in text
    assert "happens to be 0.5" in why_not_half(_run("weighted", 3, threshold=0.5))
    recall = _run("x", 3, threshold=0.2)
    recall = RunReport(**{**recall.__dict__, "threshold_policy": "recall:0.8"})
    assert "the highest threshold whose validation recall is still at least 0.8" \
        in why_not_half(recall)


def test_threshold_curve_per_day_and_per_transactions() -> None:
    y = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 1])
    p = np.array([0.1, 0.2, 0.3, 0.6, 0.7, 0.9, 0.05, 0.01, 0.4, 0.3])
    t = np.array([0.0, 0.3, 0.5, 0.95])
    two_days = DataInfo(rows=172_800, time_span_s=2 * 86_400.0)  # 86,400 transactions a day
    curve = threshold_curve(y, p, t, two_days)
    assert curve.per_day and curve.unit == "alerts per day"
    flagged = np.array([10, 6, 3, 0])
    assert np.allclose(curve.alerts, flagged / 10 * 86_400)
    assert np.allclose(curve.recall, [1.0, 1.0, 2 / 3, 0.0])
    assert np.allclose(curve.precision[:3], [0.3, 0.5, 2 / 3]) and np.isnan(curve.precision[3])
    for data in (None, DataInfo(rows=100), DataInfo(rows=100, time_span_s=0.0)):
        curve = threshold_curve(y, p, t, data)
        assert not curve.per_day and curve.unit == f"alerts per {PER_TRANSACTIONS:,} transactions"
        assert np.allclose(curve.alerts, flagged / 10 * PER_TRANSACTIONS)


def test_summary_data_registered_and_stopping(tmp_path: Path) -> None:
    runs = [_run("weighted", 1, epochs_max=100), _run("baseline", 2, epochs_max=EPOCHS),
            _run("oversample", 3)]
    data = DataInfo(source="/data/train.csv", rows=170_884, frauds=296,
                    time_span_s=1.2 * 86_400, synthetic=True)
    html = _check_pngs_and_html(render_report(tmp_path, runs, version=3, data=data))
    summary = html.split('<ul class="summary">')[1].split("</ul>")[0]
    assert "<code>/data/train.csv</code>, 170,884 rows, 296 frauds (0.173 %)" in summary
    assert "spanning 1.2 days" in summary and "SYNTHETIC" in summary
    assert "model version 3 is the <strong>weighted</strong> run, because it is the strategy " \
           "asked for" in summary
    assert f"early stopping ended training at epoch {EPOCHS} of 100" in summary
    assert "alerts per day" in summary and "at 0.5:" in summary
    assert f"ran all {EPOCHS} epochs (early stopping did not fire)" in html  # baseline
    assert f"trained {EPOCHS} epochs" in html  # oversample: limit unknown
    strategies = html.split("<h2>Imbalance strategies")[1].split("</ul>")[0]
    assert "<strong>weighted</strong> (registered)" in strategies
    assert "<strong>baseline</strong> (trained for comparison)" in strategies
    assert strategies.count("<li>") == 3
    assert "training loss is computed with class weights" in html
    assert "on resampled 50/50 batches" in html


def test_summary_without_data_and_with_a_reason(tmp_path: Path) -> None:
    run = _run("xgboost-weighted", 1)
    html = _check_pngs_and_html(render_report(tmp_path, [run], registered_reason="<best> AUPRC"))
    assert "Data</strong>: not recorded" in html
    assert "because &lt;best&gt; AUPRC" in html
    assert f"per {PER_TRANSACTIONS:,} transactions" in html
    assert "<strong>weighted</strong> (registered)" in html  # strategy from "xgboost-weighted"
    assert "not trained here" in html
    rounds = max(len(v) for v in run.history.values())
    assert f"Training: {rounds} boosting rounds kept" in html  # trees are not trained in epochs
    assert "epoch" not in html.split("Training:")[1].split("</li>")[0]


def test_a_better_comparison_run_is_pointed_out(tmp_path: Path) -> None:
    main, other = _run("weighted", 1), _run("oversample", 2)
    main = RunReport(**{**main.__dict__, "metrics": {
        "test": {"threshold": {**main.metrics["test"]["threshold"], "prc": 0.5}}}})
    html = render_report(tmp_path, [main, other]).read_text(encoding="utf-8")
    assert "Here <strong>oversample</strong> reached a higher test AUPRC" in html


@pytest.mark.parametrize("share, text", [
    (10 / 56_000, "0.018%"), (1 - 10 / 56_000, "99.982%"), (0.8, "80.0%"), (0.0, "0%"),
    (1.0, "100%"), (0.004, "0.40%")])
def test_confusion_matrix_shares_never_round_a_count_to_zero(share: float, text: str) -> None:
    from trainer.report_plots import share_text

    assert share_text(share) == text


def test_a_retrained_models_report_speaks_of_retrain() -> None:
    from trainer.report_html import html_page

    def page(run: RunReport, **kw) -> str:  # the page alone: no figures drawn
        return html_page([run], [{}], "", "", title="t", version=4, **kw)

    html = page(_run("xgboost-weighted", 1, n=600), retrained=True)
    assert "retraining round's candidate" in html and "the gate decides" in html
    assert "--compare" not in html  # a train flag: retrain has no such thing
    strategies = html.split("<h2>Imbalance strategies")[1].split("</ul>")[0]
    assert "(not trained here)" in strategies and "((" not in strategies
    trained = page(_run("weighted", 1, n=600))
    assert "(not trained here; <code>train --compare</code> trains all three)" in trained
    assert "))" not in trained.split("<h2>Imbalance strategies")[1].split("</ul>")[0]
