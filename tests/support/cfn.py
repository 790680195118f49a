"""The deployment template as the tests read it: parsed, transformed by the SAM translator as
CloudFormation would, and its values resolved for one imagined stack (the local servers' names).

`Stack` resolves the intrinsic functions the template uses (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
Fn::Select, Fn::Split, Fn::If and the condition functions) given parameter values, the pseudo
parameters and the physical names of its resources.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.aws_shapes import ACCOUNT, REGION

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "template.yaml"
STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/ocrlab-test/1c2fa620-982a-11e3-aff7-50e2416294e0"
NO_VALUE = object()


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    """The template as data, short-form tags (!Sub, !Ref) read as their long forms."""
    from cfnlint.decode import decode_str
    template, errors = decode_str(path.read_text(encoding="utf-8"))
    assert not errors, errors
    return _plain(template)


def _plain(value: Any) -> Any:
    """cfn-lint's node types as plain dicts, lists and strings."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value) if isinstance(value, str) else value


def translate(template: dict[str, Any]) -> dict[str, Any]:
    """The SAM translator's CloudFormation, after the code has been uploaded (as `sam deploy` does first)."""
    from samtranslator.translator.transform import transform

    class NoManagedPolicies:  # the template names none; asking for one is a finding
        def load(self) -> dict[str, str]:
            raise AssertionError("the SAM translator looked up an AWS managed policy")

    sam = copy.deepcopy(template)
    for resource in sam["Resources"].values():
        if resource["Type"] == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://deployment-bucket/ocrlab-lambda.zip"
    return transform(sam, {}, NoManagedPolicies())


@dataclass
class Stack:
    """One imagined deployment of the template: parameter values and resources' physical names."""

    template: dict[str, Any]
    parameters: dict[str, str] = field(default_factory=dict)
    resources: dict[str, dict[str, str]] = field(default_factory=dict)  # logical id -> {"Ref": ..., attribute: ...}

    def __post_init__(self) -> None:
        defaults = {name: str(p.get("Default", "")) for name, p in self.template.get("Parameters", {}).items()}
        self.parameters = {**defaults, **self.parameters}
        self.pseudo = {"AWS::Region": REGION, "AWS::AccountId": ACCOUNT, "AWS::Partition": "aws",
                       "AWS::StackName": "ocrlab-test", "AWS::StackId": STACK_ID, "AWS::URLSuffix": "amazonaws.com"}

    def resource(self, logical_id: str) -> dict[str, Any]:
        return self.template["Resources"][logical_id]

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template["Conditions"][name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [v for v in (self.resolve(v) for v in value) if v is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            [(name, argument)] = value.items()
            if name == "Ref":
                return self._ref(argument)
            if name == "Condition":
                return self.condition(argument)
            if name.startswith("Fn::"):
                return self._function(name[4:], argument)
        resolved = {k: self.resolve(v) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        return self.resources[name]["Ref"]

    def _function(self, name: str, arg: Any) -> Any:
        if name == "GetAtt":
            logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
            return self.resources[logical_id][attribute]
        if name == "If":
            condition, yes, no = arg
            return self.resolve(yes if self.condition(condition) else no)
        args = self.resolve(arg)
        if name == "Sub":
            text, names = (args, {}) if isinstance(args, str) else args
            return re.sub(r"\$\{(!?)([^}]+)\}", lambda m: "${" + m[2] + "}" if m[1] else str(
                names[m[2]] if m[2] in names else self._function("GetAtt", m[2]) if "." in m[2] and
                not m[2].startswith("AWS::") else self._ref(m[2])), text)
        if name == "Join":
            return args[0].join(str(v) for v in args[1])
        if name == "Select":
            return args[1][int(args[0])]
        if name == "Split":
            return args[1].split(args[0])
        if name == "Equals":
            return str(args[0]) == str(args[1])
        if name == "Not":
            return not args[0]
        if name == "And":
            return all(args)
        if name == "Or":
            return any(args)
        raise AssertionError(f"the tests cannot resolve Fn::{name}")
