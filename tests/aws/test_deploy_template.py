"""deploy/template.yaml: valid for cfn-lint (every rule, informational ones included, nothing
suppressed) and for the SAM translator; wired as the issue asks (partial batch responses, retries
up to MaxAttempts then the dead-letter queue, concurrency capped); its table is the one ocrlab
creates; its environment, metrics and alarms are the names ocrlab reads and writes."""
from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest
from support.cfn import TEMPLATE, Stack, load, translate

import ocrlab.config
from deploy import package, table
from ocrlab.aws.metrics import METRICS
from ocrlab.config import Settings
from ocrlab.store import admin
from ocrlab.store.layout import LAYOUT, Index
from ocrlab.version import load_version

# Regions with Amazon Nova Lite on demand: the resource types and values must be valid in each.
REGIONS = ["us-east-1", "us-west-2", "eu-west-2", "ap-northeast-1"]


@pytest.fixture(scope="module")
def template() -> dict:
    return load()


@pytest.fixture(scope="module")
def translated(template) -> dict:
    return translate(template)


def test_cfn_lint_finds_nothing(tmp_path):
    from cfnlint.api import lint_file
    from cfnlint.config import ManualArgs
    matches = lint_file(TEMPLATE, ManualArgs(include_checks=["I"], include_experimental=True, regions=REGIONS))
    assert [str(m) for m in matches] == []
    assert "cfn-lint" not in TEMPLATE.read_text()  # no rule is switched off in the template either


def test_sam_translates_it_to_plain_cloudformation(translated):
    resources = translated["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    [function] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    [mapping] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert function["Runtime"] == package.RUNTIME and function["Architectures"] == ["x86_64"]
    assert function["Handler"] == "ocrlab.aws.handler.lambda_handler"
    assert function["ReservedConcurrentExecutions"] == {"Fn::If": ["ReserveMaximum", {"Ref": "MaximumConcurrency"},
                                                                   {"Ref": "ReservedConcurrency"}]}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["ImageQueue", "Arn"]}
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "MaximumConcurrency"}}


@pytest.mark.parametrize("parameters, reserved, maximum", [
    ({}, 2, 2),                                                          # the defaults a guided deploy proposes
    ({"MaximumConcurrency": "12"}, 12, 12),                              # fitted to a larger quota: one parameter
    ({"MaximumConcurrency": "12", "ReservedConcurrency": "20"}, 20, 12),  # more reserved, for other callers
])
def test_maximum_concurrency_fits_the_function_to_the_quota(translated, parameters, reserved, maximum):
    """The queue's maximum concurrency is the parameter that fits the function to the account's Bedrock
    quota; the function reserves as much unless told otherwise, so the queue's deliveries are never throttled."""
    stack = Stack(translated, parameters)
    resources = translated["Resources"]
    [function] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"]
    [mapping] = [r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::EventSourceMapping"]
    assert int(stack.resolve(function["ReservedConcurrentExecutions"])) == reserved
    assert int(stack.resolve(mapping["ScalingConfig"]["MaximumConcurrency"])) == maximum
    assert "Bedrock quota" in " ".join(translated["Parameters"]["MaximumConcurrency"]["Description"].split())


def test_retries_end_in_the_dead_letter_queue_after_max_attempts(template):
    queue = template["Resources"]["ImageQueue"]["Properties"]
    function = template["Resources"]["OcrFunction"]["Properties"]
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["DeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": {"Ref": "MaxAttempts"}}
    # Above the function's timeout, so a batch still running is never handed out again (AWS advises six times).
    assert queue["VisibilityTimeout"] >= 6 * function["Timeout"]
    assert template["Parameters"]["MaxAttempts"]["Default"] == 3


def test_the_table_is_the_one_ocrlab_creates(template, dynalite, store):
    """What ensure_table made in DynamoDB (dynalite), read back, against the template's table."""
    described = store.store.client.describe_table(TableName=store.table)["Table"]
    assert _table_shape(template["Resources"]["Table"]["Properties"]) == _described_shape(described)
    assert template["Resources"]["Table"]["Properties"]["PointInTimeRecoverySpecification"] == {
        "PointInTimeRecoveryEnabled": True}
    assert template["Resources"]["Table"]["DeletionPolicy"] == "Retain"


def test_the_template_table_is_current():
    text = TEMPLATE.read_text(encoding="utf-8")
    assert table.render(text) == text, "run `python -m deploy.table` (or `make package`)"


def test_a_layout_change_reaches_both(tmp_path, monkeypatch, dynalite, table_name):
    """Another projection and an expiry attribute in the layout: the rendered template and the table
    ensure_table creates follow it, with nothing else edited."""
    changed = dataclasses.replace(LAYOUT, ttl_attribute="ExpiresAt", indexes=(
        dataclasses.replace(LAYOUT.indexes[0], projection="KEYS_ONLY"),
        Index("ByVersionImage", "OCRFullVersion", "ImageKey", "INCLUDE", ("RecordType", "FailureType"))))
    copy = tmp_path / "template.yaml"
    copy.write_text(table.render(TEMPLATE.read_text(encoding="utf-8"), changed), encoding="utf-8")
    rendered = load(copy)["Resources"]["Table"]["Properties"]
    assert rendered["TimeToLiveSpecification"] == {"AttributeName": "ExpiresAt", "Enabled": True}

    monkeypatch.setattr(admin, "LAYOUT", changed)
    from ocrlab.store import open_store
    created = open_store(table_name)  # dynalite has no expiry: ensure_table asks, is told so, goes on
    described = created.store.client.describe_table(TableName=table_name)["Table"]
    assert _table_shape(rendered) == _described_shape(described)
    assert _table_shape(rendered) != _table_shape(load()["Resources"]["Table"]["Properties"])


def _table_shape(properties: dict) -> dict:
    return {"keys": properties["KeySchema"], "attributes": sorted(properties["AttributeDefinitions"], key=str),
            "billing": properties["BillingMode"],
            "indexes": sorted(({k: i[k] for k in ("IndexName", "KeySchema", "Projection")}
                               for i in properties["GlobalSecondaryIndexes"]), key=lambda i: i["IndexName"])}


def _described_shape(described: dict) -> dict:
    return _table_shape({**described, "BillingMode": described["BillingModeSummary"]["BillingMode"]})


def test_environment_is_ocrlabs_own_settings(template):
    variables = template["Resources"]["OcrFunction"]["Properties"]["Environment"]["Variables"]
    documented = set(re.findall(r"\bOCRLAB_[A-Z_]+", ocrlab.config.__doc__ or ""))
    assert set(variables) <= documented
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert [name for name in variables if f"`{name}`" not in readme] == []
    assert variables["OCRLAB_TABLE"] == {"Ref": "Table"}
    stack = Stack(template)
    stack.resources["Table"] = {"Ref": "ocrlab-Table-1"}
    config = Settings.from_env(stack.resolve(variables))  # the defaults a guided deploy proposes
    assert (config.table, config.handler_engine, config.store) == ("ocrlab-Table-1", "bedrock", "aws")
    assert (config.bedrock_model_id, config.bedrock_answer_path, config.bedrock_prompt) == (
        "amazon.nova-lite-v1:0", "tool", None)


def test_default_version_stamp_is_valid_and_the_repositorys(template, monkeypatch):
    stack = Stack(template)
    stack.resources["Table"] = {"Ref": "t"}
    for name, value in stack.resolve(template["Resources"]["OcrFunction"]["Properties"]["Environment"][
            "Variables"]).items():
        monkeypatch.setenv(name, value)
    assert load_version() == load_version(Path(__file__).resolve().parents[2] / "OCR_VERSION.txt")


def test_alarms_watch_the_metrics_the_handler_writes(template):
    resources = template["Resources"]
    variables = resources["OcrFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["OCRLAB_METRICS_NAMESPACE"] == {"Ref": "MetricsNamespace"}
    rate = resources["FailureRateAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in rate["Metrics"] if "MetricStat" in m}
    assert {m["MetricName"] for m in stats.values()} == {"Failures", "Images"} <= METRICS.keys()
    assert all(m["Namespace"] == {"Ref": "MetricsNamespace"} and m["Dimensions"] == [
        {"Name": "Table", "Value": {"Ref": "Table"}}] for m in stats.values())
    [expression] = [m["Expression"] for m in rate["Metrics"] if "Expression" in m]
    assert expression == "100 * failures / images"
    spooled = resources["SpooledAlarm"]["Properties"]
    assert spooled["MetricName"] in METRICS and spooled["Namespace"] == {"Ref": "MetricsNamespace"}
    dead = resources["DeadLetterAlarm"]["Properties"]
    assert dead["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["DeadLetterQueue", "QueueName"]}}]
    assert dead["MetricName"] == "ApproximateNumberOfMessagesVisible" and dead["Threshold"] == 0


def test_outputs_tell_the_notebooks_where_the_records_are(template):
    outputs = template["Outputs"]
    assert outputs["TableName"]["Value"] == {"Ref": "Table"} and outputs["Region"]["Value"] == {"Ref": "AWS::Region"}
    stack = Stack(template)
    stack.resources["Table"] = {"Ref": "ocrlab-Table-1"}
    line = stack.resolve(outputs["NotebookEnvironment"]["Value"])
    config = Settings.from_env(dict(pair.split("=", 1) for pair in line.split()))
    assert config.store_target().kind == "aws" and config.table == "ocrlab-Table-1"
    assert config.aws_region == "us-east-1"
