"""An alert's explanation as the detail page and the API show it (pure): per top feature, what
it is in words, the value the model saw, the model's training-set range of that feature and
the feature's contribution."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from schemas.features import feature_title


def where_in_range(value: float | None, span: Mapping[str, float] | None) -> str | None:
    """Where ``value`` lies in a training range (``min``/``p01``/``p99``/``max``): ``"typical"``
    (between the 1st and 99th percentiles), ``"rare"`` (in the outer 1 % on either side),
    ``"outside"`` (beyond every training row); None when either is unknown."""
    if value is None or span is None:
        return None
    if value < span["min"] or value > span["max"]:
        return "outside"
    return "typical" if span["p01"] <= value <= span["p99"] else "rare"


def explained_features(explanation: Sequence[Mapping[str, Any]] | None,
                       values: Mapping[str, float] | None,
                       ranges: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """One entry per explained feature, in the explanation's order: ``feature`` (as stored),
    ``title`` (:func:`schemas.features.feature_title`), ``contribution``, ``value`` (None when
    the alert was stored without values), ``range`` (None when the model was registered without
    ranges) and ``where`` (:func:`where_in_range`)."""
    spans = {k.lower(): v for k, v in ((ranges or {}).get("features") or {}).items()}
    out = []
    for item in explanation or []:
        name = item["feature"]
        value = (values or {}).get(name)
        span = spans.get(name.lower())
        out.append({"feature": name, "title": feature_title(name),
                    "contribution": item["contribution"], "value": value, "range": span,
                    "where": where_in_range(value, span)})
    return out
