"""The operator IAM policy (components/callbacks/operator_policy.tf) grants what
`callbacks dlq list|replay --sqs-queue-url` and `callbacks replay` call, on the
resources they call it on, and is a component output."""

from __future__ import annotations

import re

from test_terraform import COMPONENT, REPO, load, strings

POLICY_TF = COMPONENT / "operator_policy.tf"


def _statements() -> dict[str, dict]:
    parsed = load(POLICY_TF)
    docs = [d["aws_iam_policy_document"]["operator"] for d in parsed["data"] if "aws_iam_policy_document" in d]
    assert len(docs) == 1
    doc = docs[0]
    out = {s["sid"]: s for s in doc.get("statement", [])}
    for dyn in doc.get("dynamic", []):
        content = dyn["statement"]["content"]
        content = content[0] if isinstance(content, list) else content
        out[content["sid"]] = content
    return out


def _one_line(value) -> str:
    return " ".join(strings(value))


def test_operator_policy_grants_each_call_on_its_resource():
    st = _statements()
    expect = {
        "PutDeadLettersBackOnTheBus": ({"events:PutEvents", "events:DescribeEventBus"}, "module.callbacks_event_bus.bus_arn"),
        "ReplayTheArchive": ({"events:StartReplay", "events:DescribeArchive"}, "module.callbacks_event_bus.archive_arn"),
        "FollowReplays": ({"events:DescribeReplay"}, ":replay/callbacks-*"),
        "FindClientRules": ({"events:ListRules"}, "*"),
        "ReadAndRemoveDeadLetters": (
            {"sqs:ReceiveMessage", "sqs:ChangeMessageVisibility", "sqs:DeleteMessage"},
            "local.operator_dlq_arns",
        ),
        "RequeueHttpsDeadLetters": ({"sqs:SendMessage"}, "local.operator_client_queue_arns"),
        "ReadClientConfig": ({"s3:GetObject"}, "local.operator_config_object_arns"),
        "UsePipelineKey": ({"kms:Decrypt", "kms:GenerateDataKey"}, "aws_kms_key.main.arn"),
    }
    assert set(expect) <= set(st), sorted(st)
    for sid, (actions, resource) in expect.items():
        assert actions <= set(st[sid]["actions"]), sid
        assert resource in _one_line(st[sid]["resources"]), f"{sid}: {st[sid]['resources']}"


def test_operator_policy_covers_every_client_dlq_and_is_an_output():
    parsed = load(POLICY_TF)
    local_vals = {k: v for block in parsed["locals"] for k, v in block.items()}
    dlqs = _one_line(local_vals["operator_dlq_arns"])
    assert "module.api_destinations" in dlqs and "dlq_arn" in dlqs
    assert "local.https_dlq_names" in dlqs
    outs = {name: body for block in parsed["output"] for name, body in block.items()}
    assert "data.aws_iam_policy_document.operator.json" in _one_line(outs["operator_policy_json"]["value"])


def test_replay_names_match_the_describe_replay_grant():
    src = (REPO / "src" / "aws" / "replay" / "archive" / "polling.rs").read_text(encoding="utf-8")
    assert re.search(r'format!\("callbacks-\{who\}-', src), "replay names must start with callbacks- (FollowReplays)"
