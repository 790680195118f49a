"""CloudWatch metrics as Embedded Metric Format (EMF) log lines, one per image.

In Lambda, a JSON line on stdout that carries an `_aws.CloudWatchMetrics` directive becomes metrics
when CloudWatch Logs ingests it: no PutMetricData call, so no IAM permission and no latency on the
image's path. Every line publishes Images, Failures (0 or 1, so Sum(Failures)/Sum(Images) is the
failure rate), Spooled, ProcessingTime and the tokens under the `Table` dimension; a failure also
publishes Failures under (`Table`, `FailureType`). The image key, version and error code ride along
as properties, for CloudWatch Logs Insights, without becoming dimensions (which would cost a metric
per image).
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable, Mapping

# Every metric a line can carry, and its unit.
METRICS = {
    "Images": "Count", "Failures": "Count", "Spooled": "Count",
    "ProcessingTime": "Seconds", "InputTokens": "Count", "OutputTokens": "Count",
}
# Metrics read from the record's attributes (absent when the attribute is).
_FROM_RECORD = {"ProcessingTime": "ProcessingTimeSeconds", "InputTokens": "InputTokens",
                "OutputTokens": "OutputTokens"}
_PROPERTIES = ("ImageKey", "OCRFullVersion", "ErrorCode", "ModelId", "S3Bucket")


def image_line(namespace: str, table: str, record: Mapping[str, Any], *, failure_type: str | None, spooled: bool,
               request_id: str | None = None, clock: Callable[[], float] = time.time) -> str:
    """The EMF line of one processed image (its record as written or spooled)."""
    values: dict[str, float] = {"Images": 1, "Failures": int(failure_type is not None), "Spooled": int(spooled)}
    for metric, attribute in _FROM_RECORD.items():
        if record.get(attribute) is not None:  # unknown (no engine call) is absent, not zero
            values[metric] = float(record[attribute])
    directives: list[dict[str, Any]] = [_directive(namespace, ["Table"], values)]
    line: dict[str, Any] = {"Table": table, **values}
    if failure_type is not None:
        directives.append(_directive(namespace, ["Table", "FailureType"], {"Failures": 1}))
        line["FailureType"] = failure_type
    line.update({k: str(record[k]) for k in _PROPERTIES if record.get(k) is not None})
    if request_id:
        line["RequestId"] = request_id
    line["_aws"] = {"Timestamp": int(clock() * 1000), "CloudWatchMetrics": directives}
    return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


def _directive(namespace: str, dimensions: list[str], values: dict[str, float]) -> dict[str, Any]:
    return {"Namespace": namespace, "Dimensions": [dimensions],
            "Metrics": [{"Name": name, "Unit": METRICS[name]} for name in values]}
