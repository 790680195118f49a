"""Least privilege, proven: the deployed function's role allows every AWS call the function makes, and
nothing it never makes.

The stack is rebuilt from deploy/template.yaml on local servers: moto's S3 and SQS (the bucket's
notification, the queue's redrive policy and the dead-letter queue as the template wires them),
dynalite behind a proxy that can lose an answer, and the local Converse server. The function runs
with the template's own environment, fed by a stand-in for Lambda's SQS poller, while good and bad
timesheets arrive, fail, are retried and end in the dead-letter queue. Every call of every boto3
client is recorded (botocore event hooks) and checked against the role's statements from the SAM
translator's output: a call the policy does not allow fails, and so does an allowed action on a
resource that no call used.
"""
from __future__ import annotations

import io
import json
from collections import Counter
from urllib.parse import unquote_plus

import boto3
import pytest
from PIL import Image
from support.aws_shapes import ACCOUNT, REGION
from support.cfn import Stack, load, translate
from support.converse_server import TIMESHEET, error, ok
from support.fault_proxy import FaultProxy
from support.helpers import png
from support.iam_calls import Call, CallRecorder, Policy
from support.lambda_poller import EventSourceMapping

from ocrlab.aws import handler
from ocrlab.runs import sources

PREFIX = "incoming/"
# Statements used by the Lambda service itself rather than by any code that runs here.
SERVICE_STATEMENTS = {"WriteLogs": "the runtime writes the function's stdout to its log group"}
GOOD, BROKEN = "incoming/2025/week 43.png", "incoming/broken.png"
OVER_TOTAL, REFUSED, DELETED = "incoming/over-total.png", "incoming/refused.png", "incoming/deleted.png"


def answer(received):
    """The model's answer, chosen by the image's width: 41 breaks validation, 42 is refused."""
    width = Image.open(io.BytesIO(received.images[0])).size[0]
    return {41: ok({**TIMESHEET, "total_hours": 20.0}), 42: error("AccessDeniedException")}.get(width, ok())


@pytest.fixture
def deployment(monkeypatch, s3_server, aws_credentials, converse_server, dynalite, store):
    """The template's resources on the local servers, and its function's environment, for one run."""
    translated = translate(load())
    names = {"ImageQueue": "ocrlab-test-ImageQueue-1Q2W3E", "DeadLetterQueue": "ocrlab-test-DeadLetterQueue-4R5T6Y"}
    stack = Stack(translated, {"ImagePrefix": PREFIX})
    for logical_id, name in names.items():
        stack.resources[logical_id] = {"Ref": f"{s3_server}/{ACCOUNT}/{name}", "QueueName": name,
                                       "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"}
    bucket = stack.resolve(stack.resource("ImageBucket")["Properties"]["BucketName"])
    log_group = stack.resolve(stack.resource("FunctionLogGroup")["Properties"]["LogGroupName"])
    stack.resources.update({
        "ImageBucket": {"Ref": bucket, "Arn": f"arn:aws:s3:::{bucket}"},
        "Table": {"Ref": store.table, "Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{store.table}"},
        "FunctionLogGroup": {"Ref": log_group, "Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group}:*"},
    })

    sqs = boto3.client("sqs", region_name=REGION, endpoint_url=s3_server)
    dead = sqs.create_queue(QueueName=names["DeadLetterQueue"])["QueueUrl"]
    redrive = stack.resolve(stack.resource("ImageQueue")["Properties"]["RedrivePolicy"])
    # Visibility 0 instead of the template's 1800 s: a failed message is back at once, not in half an hour.
    queue = sqs.create_queue(QueueName=names["ImageQueue"], Attributes={
        "VisibilityTimeout": "0", "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    s3 = boto3.client("s3", region_name=REGION, endpoint_url=s3_server)
    s3.create_bucket(Bucket=bucket)
    [notify] = stack.resolve(stack.resource("ImageBucket")["Properties"]["NotificationConfiguration"])[
        "QueueConfigurations"]
    s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={"QueueConfigurations": [{
        "QueueArn": notify["Queue"], "Events": [notify["Event"]],
        "Filter": {"Key": {"FilterRules": notify["Filter"]["S3Key"]["Rules"]}}}]})

    function = translated["Resources"]["OcrFunction"]["Properties"]
    for name, value in stack.resolve(function["Environment"]["Variables"]).items():
        monkeypatch.setenv(name, value)
    proxy = FaultProxy(dynalite.port).__enter__()
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", proxy.url)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", s3_server)
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", converse_server.url)
    converse_server.default = answer
    yield stack, s3, bucket, sqs, queue, dead, proxy
    proxy.__exit__()
    handler.reset()
    sources.s3_client.cache_clear()  # its hooked client must not outlive the recorder


def test_the_role_allows_exactly_what_the_function_calls(deployment, monkeypatch, store, converse_server):
    stack, s3, bucket, sqs, queue, dead, proxy = deployment
    for key, body in {GOOD: png(), BROKEN: b"\x89PNG\r\n\x1a\n cut short", OVER_TOTAL: png(41),
                      REFUSED: png(42), DELETED: png(), "elsewhere/other.png": png()}.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body)
    s3.delete_object(Bucket=bucket, Key=DELETED)  # notified, then gone before the function reads it
    # The good record's write succeeds but its answer is lost: the retry finds it written (GetItem).
    proxy.lose_answer = lambda operation, body: operation == "PutItem" and b"week 43" in body and b'"RecordType"' in body

    recorder = CallRecorder().install(monkeypatch)
    handler.reset()
    sources.s3_client.cache_clear()
    [source] = [r for r in stack.template["Resources"].values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    batch_size = int(stack.resolve(source["Properties"]["BatchSize"]))
    mapping = EventSourceMapping(boto3.client("sqs", region_name=REGION), queue, handler.lambda_handler, batch_size)
    mapping.drain()

    # The pipeline did what the wiring promises: the good image once, each bad one MaxAttempts times, then the DLQ.
    attempts = int(stack.parameters["MaxAttempts"])
    assert proxy.lost == 1
    [result] = store.image_records(GOOD)
    assert result["RecordType"] == "OCR_RESULT"
    for key, kind in {BROKEN: "INPUT_ERROR", OVER_TOTAL: "VALIDATION_ERROR", REFUSED: "OCR_ERROR",
                      DELETED: "INPUT_ERROR"}.items():
        records = list(store.image_records(key))
        assert [r["AttemptNumber"] for r in records] == list(range(1, attempts + 1)), key
        assert {r["FailureType"] for r in records} == {kind}, key
    dead_letters = sqs.receive_message(QueueUrl=dead, MaxNumberOfMessages=10)["Messages"]
    dead_keys = {unquote_plus(json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]) for m in dead_letters}
    assert dead_keys == {BROKEN, OVER_TOTAL, REFUSED, DELETED}
    assert sum(r["ignored"] for r in mapping.invocations) == 1  # S3's test event
    assert len(converse_server.requests) == 1 + 2 * attempts

    # Least privilege: every call allowed, every grant used.
    role = translated_role(stack)
    policy = Policy(stack.resolve(role["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]))
    calls = recorder.calls
    assert Counter(c.action for c in calls).keys() == {
        "s3:GetObject", "bedrock:InvokeModel", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem",
        "dynamodb:Query", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage"}
    assert policy.refused(calls) == []
    assert policy.unused(calls, exempt=SERVICE_STATEMENTS) == []
    assert not [c for c in calls if c.resource.endswith("elsewhere/other.png")]
    logs = stack.resources["FunctionLogGroup"]["Arn"]
    assert {(g.action, g.resource) for g in policy.grants if g.sid == "WriteLogs"} == {
        ("logs:CreateLogStream", logs), ("logs:PutLogEvents", logs)}


def translated_role(stack: Stack) -> dict:
    """The one role of the translated template, which the function runs with and SAM added nothing to."""
    resources = stack.template["Resources"]
    roles = {k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert list(roles) == ["FunctionRole"]
    assert resources["OcrFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    assert "ManagedPolicyArns" not in roles["FunctionRole"]["Properties"]
    assert len(roles["FunctionRole"]["Properties"]["Policies"]) == 1
    return roles["FunctionRole"]


def test_a_call_outside_the_policy_is_refused_and_an_unused_grant_reported():
    stack = Stack(load(), {"ImageBucketName": "timesheets", "ImagePrefix": "2025/"})
    stack.resources.update({"Table": {"Arn": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"},
                            "ImageQueue": {"Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:q"},
                            "FunctionLogGroup": {"Arn": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:g:*"}})
    statements = stack.resolve(stack.resource("FunctionRole")["Properties"]["Policies"][0]["PolicyDocument"][
        "Statement"])
    policy = Policy(statements)
    table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/t"
    allowed = Call("s3:GetObject", "arn:aws:s3:::timesheets/2025/week.png")
    assert policy.refused([allowed]) == []
    outside = [Call("s3:GetObject", "arn:aws:s3:::timesheets/2024/week.png"),   # another prefix
               Call("s3:GetObject", "arn:aws:s3:::other/2025/week.png"),        # another bucket (an existing one: named)
               Call("dynamodb:Query", f"{table}/index/ByVersionImage"),          # a read the function never makes
               Call("dynamodb:DescribeTable", table),                            # the stack owns the table
               Call("bedrock:InvokeModel", f"arn:aws:bedrock:{REGION}::foundation-model/amazon.nova-pro-v1:0")]
    assert policy.refused(outside) == sorted(outside, key=str)
    assert {g.action for g in policy.unused([allowed], exempt=SERVICE_STATEMENTS)} == {
        "bedrock:InvokeModel", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:Query",
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
