"""The Lambda handler against a local S3 server, the local DynamoDB and the local Converse server."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
from helpers import png

from ocrlab import handler


def s3_event(bucket: str, *keys: str) -> dict:
    return {"Records": [{"eventSource": "aws:s3", "awsRegion": "us-east-1", "eventName": "ObjectCreated:Put",
                         "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 1}}} for key in keys]}


@pytest.fixture
def lambda_env(monkeypatch, converse_server, store, bucket):
    monkeypatch.setenv("OCRLAB_TABLE", store.table)
    monkeypatch.setenv("OCRLAB_ENGINE", "bedrock")
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", converse_server.url)
    handler.reset()
    yield bucket
    handler.reset()


def test_mixed_good_and_bad_objects(lambda_env, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="2025/week 43.png", Body=png())
    client.put_object(Bucket=name, Key="2025/broken.png", Body=b"\x89PNG\r\n\x1a\n truncated")
    event = s3_event(name, "2025/week+43.png", "2025/broken.png", "2025/missing.png")
    event["Records"].append({"s3": {"bucket": {"name": name}}})  # malformed: no object
    context = SimpleNamespace(log_stream_name="2025/10/25/[$LATEST]abcdef", aws_request_id="req-1")

    response = handler.lambda_handler(event, context)

    assert response["processed"] == 4 and response["succeeded"] == 1 and response["failed"] == 3
    failed = {f["itemIdentifier"]: f["failureType"] for f in response["batchItemFailures"]}
    assert failed == {"2025/broken.png": "INPUT_ERROR", "2025/missing.png": "INPUT_ERROR",
                      "event:req-1#3": "INPUT_ERROR"}
    [good] = list(store.image_records("2025/week 43.png"))  # the URL-encoded key was decoded
    assert good["RecordType"] == "OCR_RESULT" and good["S3Bucket"] == name
    assert good["CloudWatchLogStream"] == "2025/10/25/[$LATEST]abcdef"
    [missing] = list(store.image_records("2025/missing.png"))
    assert missing["ErrorCode"] == "NoSuchKey" and missing["CloudWatchLogStream"] == context.log_stream_name
    assert len(converse_server.requests) == 1  # only the good image reached the model


def test_model_failure_is_listed_and_logged(lambda_env, store, converse_server):
    from converse_server import error
    client, name = lambda_env
    client.put_object(Bucket=name, Key="x.png", Body=png())
    converse_server.default = error("AccessDeniedException")
    response = handler.lambda_handler(s3_event(name, "x.png"), None)
    assert response["batchItemFailures"][0]["failureType"] == "OCR_ERROR"
    [record] = list(store.image_records("x.png"))
    assert record["ErrorCode"] == "AccessDeniedException" and record["CloudWatchLogStream"] == "unknown"
