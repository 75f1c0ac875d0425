"""The sample events in events/ against the template's EventBridge rules.

Each sample must be routed by the deployed rules exactly as the functions
expect: successful IAM user calls to iam-events, the failed CreateUser to
nothing, EKS cluster events to reconcile. The matcher implements the subset of
EventBridge pattern syntax the template uses (value lists and `exists`).
"""

from __future__ import annotations

import json
import pathlib
import re

import pytest

from test_template import RESOURCES

ROOT = pathlib.Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"

ACCOUNT = "123456789012"

# file -> logical ID of the rule that must match it (None: no rule may).
ROUTING = {
    "iam-create-user-tagged.json": "IamEventsRule",
    "iam-create-user-untagged.json": "IamEventsRule",
    "iam-tag-user.json": "IamEventsRule",
    "iam-untag-user.json": "IamEventsRule",
    "iam-delete-user.json": "IamEventsRule",
    "iam-add-user-to-group.json": "IamEventsRule",
    "iam-remove-user-from-group.json": "IamEventsRule",
    "iam-delete-group.json": "IamEventsRule",
    "iam-create-user-failed.json": None,
    "eks-create-cluster.json": "EksEventsRule",
    "eks-tag-resource.json": "EksEventsRule",
}

MANUAL = {
    "reconcile-dry-run.json": {"dryRun": True},
    "reconcile-apply.json": {},
    "reconcile-cluster.json": {"clusters": ["prod"]},
}

# Fields aws_lambda_events' AWSAPICall requires (a record without one does not parse).
REQUIRED_DETAIL = {
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "requestParameters",
    "requestID",
    "eventID",
    "eventType",
}
# Fields every CloudTrail management record written today carries.
ALWAYS_PRESENT = {"readOnly", "managementEvent", "recipientAccountId", "eventCategory", "tlsDetails"}

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
# What CloudTrail writes for IAM's createDate, e.g. "Nov 29, 2026, 3:39:04 AM".
CONSOLE_DATE = re.compile(r"^[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d:\d\d [AP]M$")


def matches(pattern, event) -> bool:
    for key, expected in pattern.items():
        present = isinstance(event, dict) and key in event
        if isinstance(expected, dict):
            if not present or not matches(expected, event[key]):
                return False
            continue
        ok = False
        for option in expected:
            if isinstance(option, dict) and set(option) == {"exists"}:
                ok = ok or (present == option["exists"])
            elif present and event[key] == option:
                ok = True
        if not ok:
            return False
    return True


def rule_patterns():
    return {
        lid: r["Properties"]["EventPattern"]
        for lid, r in RESOURCES.items()
        if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]
    }


def load(name):
    return json.loads((EVENTS / name).read_text())


def test_every_sample_is_covered():
    names = {p.name for p in EVENTS.glob("*.json")}
    assert names == set(ROUTING) | set(MANUAL) | {"schedule.json"}


@pytest.mark.parametrize("name,rule", ROUTING.items())
def test_rules_route_the_sample(name, rule):
    event = load(name)
    matched = [lid for lid, pattern in rule_patterns().items() if matches(pattern, event)]
    assert matched == ([rule] if rule else [])


def test_matcher_rejects_other_iam_calls():
    event = load("iam-tag-user.json")
    event["detail"]["eventName"] = "TagRole"
    assert not matches(rule_patterns()["IamEventsRule"], event)


@pytest.mark.parametrize("name", ROUTING)
def test_cloudtrail_record_shape(name):
    event = load(name)
    assert event["version"] == "0"
    assert UUID.match(event["id"])
    assert event["detail-type"] == "AWS API Call via CloudTrail"
    assert event["account"] == ACCOUNT
    assert event["region"] == "us-east-1"
    assert event["resources"] == []
    assert TIME.match(event["time"])
    detail = event["detail"]
    missing = (REQUIRED_DETAIL | ALWAYS_PRESENT) - set(detail)
    assert not missing, missing
    assert "responseElements" in detail
    assert detail["eventVersion"] == "1.09"
    assert detail["eventTime"] == event["time"]
    assert detail["awsRegion"] == "us-east-1"
    assert detail["eventType"] == "AwsApiCall"
    assert detail["readOnly"] is False
    assert detail["managementEvent"] is True
    assert detail["eventCategory"] == "Management"
    assert detail["recipientAccountId"] == ACCOUNT
    assert UUID.match(detail["requestID"]) and UUID.match(detail["eventID"])
    assert event["source"] == "aws." + detail["eventSource"].split(".")[0]
    identity = detail["userIdentity"]
    assert identity["type"] in ("IAMUser", "AssumedRole")
    attributes = identity["sessionContext"]["attributes"]
    assert attributes["mfaAuthenticated"] in ("true", "false")
    assert TIME.match(attributes["creationDate"])
    if identity["type"] == "AssumedRole":
        issuer = identity["sessionContext"]["sessionIssuer"]
        assert {"type", "principalId", "arn", "accountId"} <= set(issuer)
        assert identity["principalId"].startswith(issuer["principalId"] + ":")
    else:
        assert identity["arn"].endswith(":user/" + identity["userName"])


def test_create_user_tagged():
    detail = load("iam-create-user-tagged.json")["detail"]
    assert detail["eventName"] == "CreateUser"
    assert detail["requestParameters"] == {"userName": "dave", "tags": [{"key": "eks-access", "value": "admin"}]}
    user = detail["responseElements"]["user"]
    assert user["userName"] == "dave"
    assert user["arn"] == f"arn:aws:iam::{ACCOUNT}:user/dave"
    assert user["path"] == "/"
    assert re.match(r"^AIDA[A-Z0-9]{15,}$", user["userId"])
    assert CONSOLE_DATE.match(user["createDate"])


def test_create_user_untagged():
    detail = load("iam-create-user-untagged.json")["detail"]
    assert detail["eventName"] == "CreateUser"
    assert "tags" not in detail["requestParameters"]
    assert "tags" not in detail["responseElements"]["user"]


def test_tag_untag_delete():
    tag = load("iam-tag-user.json")["detail"]
    assert (tag["eventName"], tag["requestParameters"], tag["responseElements"]) == (
        "TagUser", {"userName": "dave", "tags": [{"key": "eks-access", "value": "admin"}]}, None)
    untag = load("iam-untag-user.json")["detail"]
    assert (untag["eventName"], untag["requestParameters"], untag["responseElements"]) == (
        "UntagUser", {"userName": "dave", "tagKeys": ["eks-access"]}, None)
    delete = load("iam-delete-user.json")["detail"]
    assert (delete["eventName"], delete["requestParameters"], delete["responseElements"]) == (
        "DeleteUser", {"userName": "dave"}, None)


def test_failed_create_user():
    detail = load("iam-create-user-failed.json")["detail"]
    assert detail["errorCode"] == "EntityAlreadyExistsException"
    assert detail["errorMessage"]
    assert detail["responseElements"] is None


def test_eks_events():
    create = load("eks-create-cluster.json")["detail"]
    assert create["eventName"] == "CreateCluster"
    assert create["requestParameters"]["name"] == "prod-2"
    assert create["requestParameters"]["tags"]["eks-access-sync/managed"] == "true"
    tag = load("eks-tag-resource.json")["detail"]
    assert tag["eventName"] == "TagResource"
    assert tag["requestParameters"]["resourceArn"] == f"arn:aws:eks:us-east-1:{ACCOUNT}:cluster/legacy"
    assert tag["requestParameters"]["tags"] == {"eks-access-sync/managed": "true"}


def test_schedule_event():
    event = load("schedule.json")
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["detail"] == {}
    (rule_arn,) = event["resources"]
    assert rule_arn.startswith(f"arn:aws:events:us-east-1:{ACCOUNT}:rule/")
    assert not any(matches(p, event) for p in rule_patterns().values())


@pytest.mark.parametrize("name,payload", MANUAL.items())
def test_manual_payloads(name, payload):
    assert load(name) == payload
