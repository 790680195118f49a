"""The Lambda handler against a local S3 server, the local DynamoDB and the local Converse server:
direct S3 events, SQS messages carrying them, partial batch responses and the EMF metric lines, and
throttled images under a Bedrock quota."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from support.aws_shapes import emf_records, s3_event, s3_record, s3_test_event, sqs_event, sqs_message
from support.converse_server import TIMESHEET, Quota, error, ok
from support.helpers import free_port, png

from ocrlab.aws import handler
from ocrlab.aws.quota import MARGIN

CONTEXT = SimpleNamespace(log_stream_name="2025/10/25/[$LATEST]abcdef", aws_request_id="req-1")
BROKEN = b"\x89PNG\r\n\x1a\n truncated"


def test_mixed_good_and_bad_objects(lambda_env, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="2025/week 43.png", Body=png())
    client.put_object(Bucket=name, Key="2025/broken.png", Body=BROKEN)
    event = s3_event(name, "2025/week 43.png", "2025/broken.png", "2025/missing.png")
    event["Records"].append({"s3": {"bucket": {"name": name}}})  # malformed: no object

    response = handler.lambda_handler(event, CONTEXT)

    assert response["processed"] == 4 and response["succeeded"] == 1 and response["failed"] == 3
    failed = {f["itemIdentifier"]: f["failureType"] for f in response["failures"]}
    assert failed == {"2025/broken.png": "INPUT_ERROR", "2025/missing.png": "INPUT_ERROR",
                      "event:req-1#3": "INPUT_ERROR"}
    # Given back: the deliveries Lambda sent; a record with no identity of its own is logged, never given back
    # (an identifier Lambda did not send would fail the whole batch).
    assert response["batchItemFailures"] == [{"itemIdentifier": "2025/broken.png"},
                                             {"itemIdentifier": "2025/missing.png"}]
    [good] = list(store.image_records("2025/week 43.png"))  # the URL-encoded key was decoded
    assert good["RecordType"] == "OCR_RESULT" and good["S3Bucket"] == name
    assert good["CloudWatchLogStream"] == "2025/10/25/[$LATEST]abcdef"
    [missing] = list(store.image_records("2025/missing.png"))
    assert missing["ErrorCode"] == "NoSuchKey" and missing["CloudWatchLogStream"] == CONTEXT.log_stream_name
    assert len(converse_server.requests) == 1  # only the good image reached the model


def test_model_failure_is_listed_and_logged(lambda_env, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="x.png", Body=png())
    converse_server.default = error("AccessDeniedException")
    response = handler.lambda_handler(s3_event(name, "x.png"), None)
    assert response["failures"][0]["failureType"] == "OCR_ERROR"
    [record] = list(store.image_records("x.png"))
    assert record["ErrorCode"] == "AccessDeniedException" and record["CloudWatchLogStream"] == "unknown"


def test_sqs_messages_are_retried_by_message_id(lambda_env, store, converse_server):
    client, name = lambda_env
    for key, body in {"in/good one.png": png(), "in/broken.png": BROKEN, "in/second.png": png()}.items():
        client.put_object(Bucket=name, Key=key, Body=body)
    converse_server.push(ok(), ok({**TIMESHEET, "total_hours": 20.0}))  # the second answer breaks validation
    messages = {
        "good": sqs_message(s3_event(name, "in/good one.png")),
        "test": sqs_message(s3_test_event(name)),
        "broken": sqs_message(s3_event(name, "in/broken.png")),
        "invalid": sqs_message(s3_event(name, "in/second.png")),
        "not-json": sqs_message("{'Records': "),
        "no-object": sqs_message({"Records": [{"s3": {"bucket": {"name": name}}}]}),
        "not-s3": sqs_message({"detail-type": "Object Created"}),
    }
    response = handler.lambda_handler(sqs_event(*messages.values()), CONTEXT)

    ids = {label: m["messageId"] for label, m in messages.items()}
    retried = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert retried == [ids[k] for k in ("broken", "invalid", "not-json", "no-object", "not-s3")]
    assert response["succeeded"] == 1 and response["ignored"] == 1  # the S3 test event is no work, no failure
    kinds = {f["itemIdentifier"]: f["failureType"] for f in response["failures"]}
    assert kinds[ids["broken"]] == "INPUT_ERROR" and kinds[ids["invalid"]] == "VALIDATION_ERROR"
    [malformed] = list(store.image_records(ids["not-json"]))  # a failure record under the message's id
    assert malformed["ErrorCode"] == "MalformedEventRecord" and "not JSON" in malformed["ErrorMessage"]
    [good] = list(store.image_records("in/good one.png"))
    assert good["RecordType"] == "OCR_RESULT"


def test_several_objects_in_one_message_fail_it_together(lambda_env, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="a.png", Body=png())
    message = sqs_message({"Records": [s3_record(name, "a.png"), s3_record(name, "gone.png")]})
    response = handler.lambda_handler(sqs_event(message), CONTEXT)
    assert response["succeeded"] == 1 and response["batchItemFailures"] == [{"itemIdentifier": message["messageId"]}]


def test_one_metric_line_per_image(lambda_env, converse_server, capsys):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="good.png", Body=png())
    client.put_object(Bucket=name, Key="broken.png", Body=BROKEN)
    converse_server.push(ok(input_tokens=1500, output_tokens=90))
    event = sqs_event(sqs_message(s3_event(name, "good.png")), sqs_message(s3_event(name, "broken.png")),
                      sqs_message("not json"))
    handler.lambda_handler(event, CONTEXT)

    lines = emf_records(capsys.readouterr().out)
    assert len(lines) == 3
    assert {line["Table"] for line in lines} == {handler._get_pipeline().store.table}
    assert sum(line["Images"] for line in lines) == 3 and sum(line["Failures"] for line in lines) == 2
    good, broken, malformed = lines
    assert good["InputTokens"] == 1500 and good["OutputTokens"] == 90 and good["ProcessingTime"] > 0
    assert good["ImageKey"] == "good.png" and good["OCRFullVersion"] == "2.0.0-2025-10-25"
    assert good["RequestId"] == "req-1" and "FailureType" not in good
    assert [d["Dimensions"] for d in good["_aws"]["CloudWatchMetrics"]] == [[["Table"]]]
    assert broken["FailureType"] == malformed["FailureType"] == "INPUT_ERROR"
    assert "InputTokens" not in broken  # no model call: unknown, not zero
    by_type = broken["_aws"]["CloudWatchMetrics"][1]
    assert by_type["Dimensions"] == [["Table", "FailureType"]] and by_type["Metrics"] == [
        {"Name": "Failures", "Unit": "Count"}]
    assert all(line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ocrlab" for line in lines)


def test_spooled_records_are_counted_and_their_messages_retried(lambda_env, monkeypatch, ocrlab_home, capsys,
                                                               fault_proxy):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="good.png", Body=png())
    monkeypatch.setenv("OCRLAB_STORE", "aws")  # as in Lambda; the store claims, then refuses every record
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", fault_proxy.url)
    monkeypatch.setenv("OCRLAB_METRICS_NAMESPACE", "ocrlab-test")
    fault_proxy.throttle_only, fault_proxy.throttle = frozenset({"PutItem"}), 10**6
    handler.reset()
    message = sqs_message(s3_event(name, "good.png"))
    response = handler.lambda_handler(sqs_event(message), CONTEXT)

    # The OCR worked, but the record waits in a spool that may not outlive the container: try again.
    assert response["batchItemFailures"] == [{"itemIdentifier": message["messageId"]}]
    assert response["failures"][0]["spooled"] and response["failures"][0]["failureType"] is None
    [line] = emf_records(capsys.readouterr().out)
    assert line["Spooled"] == 1 and line["Failures"] == 0
    assert line["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ocrlab-test"
    spool = handler._get_pipeline().store.spool
    assert spool.path.is_relative_to(ocrlab_home) and spool.pending() == 1

    # The next invocation of the container writes what it spooled first; the redelivered message
    # then finds the image done.
    fault_proxy.throttle = 0
    again = handler.lambda_handler(sqs_event(dict(message, attributes={"ApproximateReceiveCount": "2"})), CONTEXT)
    assert spool.pending() == 0 and again["batchItemFailures"] == [] and again["skipped"] == 1


def test_without_a_store_to_claim_in_nothing_runs_and_the_message_comes_back(lambda_env, monkeypatch,
                                                                             converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="good.png", Body=png())
    monkeypatch.setenv("OCRLAB_STORE", "aws")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", f"http://127.0.0.1:{free_port()}")  # nothing listens
    handler.reset()
    message = sqs_message(s3_event(name, "good.png"))
    response = handler.lambda_handler(sqs_event(message), CONTEXT)
    assert response["batchItemFailures"] == [{"itemIdentifier": message["messageId"]}]
    assert "not claimed" in response["failures"][0]["error"] and converse_server.requests == []


def test_version_stamp_prompt_and_model_from_the_environment(lambda_env, monkeypatch, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="v.png", Body=png())
    monkeypatch.setenv("OCRLAB_OCR_VERSION", "2.1.0")
    monkeypatch.setenv("OCRLAB_OCR_BUILD_DATE", "2025-11-02")
    monkeypatch.setenv("OCRLAB_OCR_DESCRIPTION", "candidate prompt, deployed")
    monkeypatch.setenv("OCRLAB_BEDROCK_MODEL_ID", "amazon.nova-pro-v1:0")
    monkeypatch.setenv("OCRLAB_BEDROCK_ANSWER_PATH", "text")
    monkeypatch.setenv("OCRLAB_BEDROCK_PROMPT", "timesheet_v1")
    handler.reset()
    handler.lambda_handler(s3_event(name, "v.png"), CONTEXT)
    [record] = list(store.image_records("v.png"))
    assert record["OCRFullVersion"] == "2.1.0-2025-11-02" and record["OCRDescription"] == "candidate prompt, deployed"
    assert json.loads(record["EngineConfig"])["prompt"] == "timesheet_v1"
    [request] = converse_server.requests
    assert request.model_id == "amazon.nova-pro-v1:0" and "toolConfig" not in request.body


def test_in_lambda_the_spool_is_under_tmp():
    from ocrlab.config import Settings
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "ocrlab-ocr"}).spool_dir == Path("/tmp/ocrlab/spool")
    assert Settings.from_env({"AWS_LAMBDA_FUNCTION_NAME": "ocrlab-ocr", "OCRLAB_HOME": "/mnt/efs"}).home == Path("/mnt/efs")


MALFORMED_EVENTS = {
    "null": None, "a list": [{"Records": []}], "a string": "Records", "no Records": {"detail": {}},
    "Records not a list": {"Records": "abc"},
}


@pytest.mark.parametrize("shape", MALFORMED_EVENTS)
def test_an_event_of_any_other_shape_is_one_logged_input_error(shape, lambda_env, store, converse_server):
    response = handler.lambda_handler(MALFORMED_EVENTS[shape], CONTEXT)
    assert response["batchItemFailures"] == [] and response["failed"] == 1   # nothing Lambda sent to give back
    [failure] = response["failures"]
    assert failure["itemIdentifier"] == "event:req-1" and failure["failureType"] == "INPUT_ERROR"
    [record] = list(store.image_records("event:req-1"))
    assert record["ErrorCode"] == "MalformedEventRecord" and "not an S3 or SQS event" in record["ErrorMessage"]
    assert converse_server.requests == []


def test_malformed_records_in_an_sqs_batch_cost_only_their_own_messages(lambda_env, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="good.png", Body=png())
    good = sqs_message(s3_event(name, "good.png"), message_id="good")
    shapes = {"null-key": {"s3": {"bucket": {"name": name}, "object": {"key": None}}},
              "numeric-key": {"s3": {"bucket": {"name": name}, "object": {"key": 42}}},
              "no-object": {"s3": {"bucket": {"name": name}}},
              "s3-not-a-map": {"s3": "bucket"},
              "record-null": None}
    bad = [sqs_message({"Records": [record]}, message_id=message_id) for message_id, record in shapes.items()]
    not_json = sqs_message("{not json", message_id="not-json")
    no_id = {**sqs_message(s3_event(name, "good.png")), "messageId": None}
    response = handler.lambda_handler(sqs_event(*bad[:2], good, *bad[2:], not_json, no_id), CONTEXT)

    assert response["succeeded"] == 1 and len(converse_server.requests) == 1     # the good one ran, once
    assert response["skipped"] == 1                                               # its copy without an id: done
    given_back = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert given_back == [*shapes, "not-json"]                                     # each malformed message alone
    reasons = {f["itemIdentifier"]: f["error"] for f in response["failures"]}
    assert "s3.object.key is null, not a string" in reasons["null-key"]
    assert "s3.object.key is an int, not a string" in reasons["numeric-key"]
    assert "missing s3.object" in reasons["no-object"] and "s3 is a str, not an object" in reasons["s3-not-a-map"]
    for message_id in [*shapes, "not-json"]:
        [record] = list(store.image_records(message_id))
        assert record["FailureType"] == "INPUT_ERROR" and record["ErrorCode"] == "MalformedEventRecord"


# --- under a Bedrock quota (ocrlab.aws.quota) ---------------------------------------------------

def time_left(seconds: float) -> SimpleNamespace:
    """A Lambda context whose invocation has `seconds` left."""
    return SimpleNamespace(log_stream_name=CONTEXT.log_stream_name, aws_request_id="req-q",
                           get_remaining_time_in_millis=lambda: int(seconds * 1000))


def test_throttled_to_the_invocations_end_goes_back_to_the_queue_unrecorded(lambda_env, store, converse_server,
                                                                            capsys):
    client, name = lambda_env
    keys = ("a.png", "b.png")
    for key in keys:
        client.put_object(Bucket=name, Key=key, Body=png())
    messages = [sqs_message(s3_event(name, key)) for key in keys]
    converse_server.quota = Quota(requests_per_second=0)  # exhausted: another workload holds it all
    response = handler.lambda_handler(sqs_event(*messages), time_left(MARGIN + 0.5))

    assert response["batchItemFailures"] == [{"itemIdentifier": m["messageId"]} for m in messages]
    assert [list(store.image_records(key)) for key in keys] == [[], []]  # no failure record
    assert (response["throttled"], response["succeeded"]) == (2, 0)
    assert all(f["failureType"] is None and "throttled" in f["error"] for f in response["failures"])
    assert emf_records(capsys.readouterr().out) == []  # nor a failure in the metrics
    assert converse_server.throttled == len(converse_server.requests) >= 2

    converse_server.quota = None  # the quota is back, and the queue delivers the messages again
    again = handler.lambda_handler(sqs_event(*[sqs_message(s3_event(name, key), receive_count=2) for key in keys]),
                                   time_left(MARGIN + 60))
    assert (again["succeeded"], again["batchItemFailures"]) == (2, [])
    assert [store.attempt_count(key) for key in keys] == [0, 0]  # being throttled cost no attempt


def test_throttled_past_the_bound_or_with_no_queue_is_a_throttling_error(lambda_env, store, converse_server):
    client, name = lambda_env
    client.put_object(Bucket=name, Key="late.png", Body=png())
    client.put_object(Bucket=name, Key="direct.png", Body=png())
    old = s3_record(name, "late.png")
    old["eventTime"] = "2025-10-25T08:00:00.000Z"  # delivered before, and longer ago than max_throttle_wait
    message = sqs_message({"Records": [old]}, receive_count=2)
    converse_server.quota = Quota(requests_per_second=0)

    queued = handler.lambda_handler(sqs_event(message), time_left(MARGIN + 0.3))
    direct = handler.lambda_handler(s3_event(name, "direct.png"), time_left(MARGIN + 0.3))  # nothing brings it back

    assert queued["batchItemFailures"] == [{"itemIdentifier": message["messageId"]}]
    assert [f["failureType"] for f in queued["failures"] + direct["failures"]] == ["THROTTLING_ERROR"] * 2
    assert queued["throttled"] == direct["throttled"] == 0
    for key in ("late.png", "direct.png"):
        [logged] = list(store.image_records(key))
        assert logged["FailureType"] == "THROTTLING_ERROR" and logged["ErrorCode"] == "ThrottlingException"
        assert "still throttled after waiting" in logged["ErrorMessage"] and logged["AttemptNumber"] == 1
