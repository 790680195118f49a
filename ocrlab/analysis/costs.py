"""What OCR cost: on-demand prices per model and the token cost of each OCR version."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class ModelPrice:
    """On-demand price in USD per 1000 tokens."""

    input_per_1k: float
    output_per_1k: float


NOVA_LITE = "amazon.nova-lite-v1:0"
# Amazon Nova Lite on-demand (us-east-1): $0.06 / $0.24 per million input / output tokens.
# Local engines cost nothing per token; their model ids start with the engine name.
DEFAULT_PRICES: dict[str, ModelPrice] = {
    NOVA_LITE: ModelPrice(0.00006, 0.00024),
    "rapidocr": ModelPrice(0.0, 0.0),
    "tesseract": ModelPrice(0.0, 0.0),
}
COST_COLUMNS = ["records", "images", "input_tokens", "output_tokens", "cost_usd", "cost_per_image_usd",
                "model_ids", "note"]


def price_for(model_id: Any, prices: Mapping[str, ModelPrice | tuple[float, float]] = DEFAULT_PRICES
              ) -> ModelPrice | None:
    """The price of a model id, or None if unknown.

    Matches the id itself; a local engine's versioned id (`rapidocr-3.4/...`) by its engine name;
    an ARN by its last part; a cross-region inference profile (`us.amazon.nova-lite-v1:0`) by
    the model id behind it.
    """
    if not isinstance(model_id, str) or not model_id:
        return None
    tail = model_id.rsplit("/", 1)[-1]
    for candidate in (model_id, tail, tail.split(".", 1)[-1]):
        if candidate in prices:
            return _price(prices[candidate])
    for key, price in prices.items():
        if model_id.startswith((key + "-", key + "/")):
            return _price(price)
    return None


def _price(value: ModelPrice | tuple[float, float]) -> ModelPrice:
    return value if isinstance(value, ModelPrice) else ModelPrice(*value)


def token_costs(frame: pd.DataFrame,
                prices: Mapping[str, ModelPrice | tuple[float, float]] = DEFAULT_PRICES) -> pd.DataFrame:
    """Per OCR version: records, images, tokens, cost in USD and cost per image.

    Pass failures and results together (records_frame): failed calls are paid for too. A record
    without token counts made no billed call (0 tokens). A record whose model id has no price
    makes its version's cost NaN, and `note` says which ids are unknown: never a silent 0.
    """
    if frame.empty:
        return pd.DataFrame(columns=COST_COLUMNS).rename_axis("OCRFullVersion")
    f = frame.reindex(columns=list(dict.fromkeys(["OCRFullVersion", "ImageKey", "ModelId", "InputTokens",
                                                  "OutputTokens", *frame.columns])))
    # Plain float64, not Int64: NaN (an unknown price) must propagate through the sums, pd.NA would not.
    tokens_in = pd.to_numeric(f["InputTokens"], errors="coerce").astype("float64").fillna(0.0)
    tokens_out = pd.to_numeric(f["OutputTokens"], errors="coerce").astype("float64").fillna(0.0)
    price = f["ModelId"].map(lambda m: price_for(m, prices))
    rate_in = price.map(lambda p: p.input_per_1k if p else np.nan).astype(float)
    rate_out = price.map(lambda p: p.output_per_1k if p else np.nan).astype(float)
    f = f.assign(_in=tokens_in, _out=tokens_out, _cost=tokens_in / 1000 * rate_in + tokens_out / 1000 * rate_out,
                 _unknown=price.isna(), _model=f["ModelId"].astype(object).where(f["ModelId"].notna(), "(none)"))
    rows = {}
    for version, g in f.groupby(f["OCRFullVersion"].astype(object).where(f["OCRFullVersion"].notna(), "(missing)")):
        images = g["ImageKey"].nunique()
        cost = g["_cost"].sum(skipna=False)
        unknown = sorted(g.loc[g["_unknown"], "_model"].astype(str).unique())
        rows[version] = {
            "records": len(g), "images": images, "input_tokens": int(g["_in"].sum()),
            "output_tokens": int(g["_out"].sum()), "cost_usd": cost,
            "cost_per_image_usd": cost / images if images else np.nan,
            "model_ids": ", ".join(sorted(g["_model"].astype(str).unique())),
            "note": f"no price for model id(s): {', '.join(unknown)}" if unknown else ""}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=COST_COLUMNS).rename_axis("OCRFullVersion")
    return out.astype({"records": "int64", "images": "int64", "input_tokens": "Int64", "output_tokens": "Int64",
                       "cost_usd": "float64", "cost_per_image_usd": "float64"})
