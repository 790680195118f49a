"""Every AWS API call a process makes, named as IAM names it, and checked against a policy.

`CallRecorder.install` hooks every boto3 client created afterwards (botocore's
`before-parameter-build` event, once per API call, before any retry), so the real clients the code
builds for itself are the ones watched. Each call becomes an IAM action and the ARN of the
resource it touches; `Policy` says which statements allow it.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, Iterable
from urllib.parse import urlparse

from support.aws_shapes import ACCOUNT

# API operations whose IAM action has another name (the rest are `<signing name>:<operation>`).
ACTION_NAMES = {
    ("bedrock", "Converse"): "bedrock:InvokeModel",
    ("bedrock", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}


@dataclass(frozen=True)
class Call:
    action: str
    resource: str


def resource_arn(service: str, region: str, params: dict[str, Any]) -> str:
    """The ARN IAM checks for a call, from its parameters."""
    if service == "s3":
        bucket = f"arn:aws:s3:::{params['Bucket']}"
        return f"{bucket}/{params['Key']}" if "Key" in params else bucket
    if service == "dynamodb":
        table = f"arn:aws:dynamodb:{region}:{ACCOUNT}:table/{params['TableName']}"
        return f"{table}/index/{params['IndexName']}" if "IndexName" in params else table
    if service == "bedrock":
        model = params["modelId"]
        return model if model.startswith("arn:") else f"arn:aws:bedrock:{region}::foundation-model/{model}"
    if service == "sqs":
        account, name = urlparse(params["QueueUrl"]).path.strip("/").split("/")[-2:]
        return f"arn:aws:sqs:{region}:{account}:{name}"
    raise AssertionError(f"the tests do not know the resource of a {service} call: teach resource_arn")


class CallRecorder:
    """The calls of every boto3 client created while installed, in order."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def install(self, monkeypatch: Any) -> CallRecorder:
        import boto3.session
        create = boto3.session.Session.client

        def client(session: Any, *args: Any, **kwargs: Any) -> Any:
            made = create(session, *args, **kwargs)
            made.meta.events.register("before-parameter-build", self._hook(made.meta.region_name))
            return made
        monkeypatch.setattr(boto3.session.Session, "client", client)
        return self

    def _hook(self, region: str) -> Any:
        def record(params: dict[str, Any], model: Any, **_: Any) -> None:
            service = model.service_model.signing_name
            action = ACTION_NAMES.get((service, model.name), f"{service}:{model.name}")
            self.calls.append(Call(action, resource_arn(service, region, params)))
        return record


@dataclass(frozen=True)
class Grant:
    """One action on one resource pattern, of the statement `sid`."""

    sid: str
    action: str
    resource: str

    def allows(self, call: Call) -> bool:
        # IAM wildcards: * any run of characters, ? one; actions ignore case. (No ARN here holds '['.)
        return fnmatchcase(call.action.lower(), self.action.lower()) and fnmatchcase(call.resource, self.resource)


class Policy:
    """The Allow statements of an IAM policy document (the template uses no Deny, NotAction or Condition)."""

    def __init__(self, statements: Iterable[dict[str, Any]]) -> None:
        self.grants: list[Grant] = []
        for statement in statements:
            assert statement["Effect"] == "Allow" and set(statement) <= {"Sid", "Effect", "Action", "Resource"}, statement
            for action in _listed(statement["Action"]):
                self.grants.extend(Grant(statement.get("Sid", ""), action, r) for r in _listed(statement["Resource"]))

    def refused(self, calls: Iterable[Call]) -> list[Call]:
        """The calls no statement allows."""
        return sorted({c for c in calls if not any(g.allows(c) for g in self.grants)}, key=str)

    def unused(self, calls: Iterable[Call], exempt: Iterable[str] = ()) -> list[Grant]:
        """The grants no call needed, outside the statements `exempt` names."""
        seen = set(calls)
        return [g for g in self.grants if g.sid not in set(exempt) and not any(g.allows(c) for c in seen)]


def _listed(value: str | list[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)
