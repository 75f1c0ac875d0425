"""Least privilege of infra/member.yaml (issue 12), and the hub's half of it.

The member stack creates one role in a member account, assumed by the hub
stack's function role, that can do there exactly what the functions do to
clusters: list and describe them, and manage the hub tier roles' (and their
shard roles') access entries. The template is parsed as test_template.py parses
the hub (cfn-lint's decoder, so short-form intrinsics come back in long form),
each Fn::If is expanded for every combination of the member's conditions, and
the lists built from TierRoleNames (Fn::Join, Fn::Split, Fn::Sub with
variables) are evaluated, so a policy is checked as IAM would receive it.

Actions, resource types, ARN formats and condition keys are those of the
Service Authorization Reference ("Actions, resources, and condition keys for
Amazon Elastic Kubernetes Service"); the resource types and ARN formats are
read from the copy cfn-lint ships (cfnlint/data/AdditionalSpecs/Policies.json).
"""

from __future__ import annotations

import itertools
import json
import pathlib
import re
import subprocess
import sys

import cfnlint
import pytest
from cfnlint.decode import decode_str

# The hub's template and helpers (test_events.py imports them the same way).
from test_template import MEMBER_ROLES, RESOURCES as HUB_RESOURCES, TEMPLATE as HUB
from test_template import all_condition_values as hub_condition_values
from test_template import as_list, resolve as hub_resolve, statements as hub_statements

ROOT = pathlib.Path(__file__).resolve().parents[2]
MEMBER_PATH = ROOT / "infra" / "member.yaml"


def _plain(node):
    """cfn-lint's node classes -> plain dicts, lists and strings."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    return node


def _load():
    template, matches = decode_str(MEMBER_PATH.read_text())
    assert not matches, f"member.yaml does not parse: {matches}"
    return _plain(template)


MEMBER = _load()
RESOURCES = MEMBER["Resources"]
ROLE_ID = "MemberRole"
# The tier policies' associations: a managed policy attached to the role (room).
ASSOCIATIONS_ID = "TierPolicyAssociations"

# The one tag the policy reads as a policy variable: the hub account.
HUB_TAG = "eks-access-sync-hub-account"
HUB_TAG_VARIABLE = "${aws:PrincipalTag/" + HUB_TAG + "}"

P = "arn:${AWS::Partition}"
HUB_ACCOUNT = "${HubAccountId}"
HUB_FUNCTION_ROLE = f"{P}:iam::{HUB_ACCOUNT}:role/${{HubFunctionRoleName}}"
CLUSTERS = f"{P}:eks:*:${{AWS::AccountId}}:cluster/*"
# access-entry/<cluster>/role/<principal account>/<role name>/<uuid>
ENTRY_PREFIX = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/role/"
# Any role's entry, of any principal account: read only (as in the hub).
ANY_ROLE_ENTRY = ENTRY_PREFIX + "*/*/*"
SHARD_PATH = "/eks-access-sync/"
ADMIN = "${AdminRoleName}"

# Every action the functions take on clusters (the hub's FunctionRole grants
# on clusters and role access entries, test_template.EXPECTED_FUNCTION_GRANTS),
# and nothing else: no IAM, no STS, no user entries (a member's users are not
# touched).
ALLOWED_ACTIONS = {
    "eks:ListClusters",
    "eks:DescribeCluster",
    "eks:ListAccessEntries",
    "eks:CreateAccessEntry",
    "eks:DescribeAccessEntry",
    "eks:UpdateAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    "eks:DeleteAccessEntry",
    "eks:AssociateAccessPolicy",
    "eks:DisassociateAccessPolicy",
}

# Service Authorization Reference, EKS: the condition keys of each action's own
# column (the resource types' keys are read from cfn-lint's copy below).
ACTION_CONDITION_KEYS = {
    "eks:CreateAccessEntry": {
        "aws:RequestTag/${TagKey}",
        "aws:TagKeys",
        "eks:accessEntryType",
        "eks:kubernetesGroups",
        "eks:principalArn",
        "eks:username",
    },
    "eks:AssociateAccessPolicy": {"eks:accessScope", "eks:namespaces", "eks:policyArn"},
    "eks:DisassociateAccessPolicy": {"eks:accessScope", "eks:namespaces", "eks:policyArn"},
}

POLICIES_JSON = pathlib.Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" / "Policies.json"
EKS_SERVICE = json.loads(POLICIES_JSON.read_text())["eks"]

TIER_POLICIES = [
    f"{P}:eks::aws:cluster-access-policy/AmazonEKS{name}Policy" for name in ("ClusterAdmin", "Admin", "Edit", "View")
]
TAG_CONDITION = {"aws:ResourceTag/eks-access-sync/managed": "true"}

# --------------------------------------------------------------------------
# Evaluating the template
# --------------------------------------------------------------------------

DERIVED_CONDITIONS = {"HasTierRoles"}
CONDITION_NAMES = sorted(set(MEMBER.get("Conditions", {})) - DERIVED_CONDITIONS)
NO_VALUE = object()
NO_TIER_ROLES = [""]
TIER_ROLES = ["eks-edit", "eks-view"]
NINE_TIER_ROLES = [f"eks-tier-{i:02d}" for i in range(9)]


def derived_conditions(tier_roles):
    return {"HasTierRoles": "".join(tier_roles) != ""}


def cases():
    """(tier_roles, conditions) for both kinds of TierRoleNames and every
    combination of the other conditions."""
    for tier_roles in (NO_TIER_ROLES, TIER_ROLES):
        for values in itertools.product([True, False], repeat=len(CONDITION_NAMES)):
            yield tier_roles, dict(zip(CONDITION_NAMES, values)) | derived_conditions(tier_roles)


CASES = list(cases())
CASE_IDS = [f"{'tiers' if t[0] else 'single-tier'}-{sorted(k for k, v in c.items() if v)}" for t, c in CASES]


def _sub(template, variables):
    def replace(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return variables.get(name, match.group(0))

    return re.sub(r"\$\{([^}]*)\}", replace, template)


def resolve(node, conditions, tier_roles):
    """Fn::If expanded, AWS::NoValue dropped, Ref TierRoleNames the given list,
    any other Ref "${Name}" (as Fn::Sub writes it), and Fn::Sub, Fn::Join and
    Fn::Split evaluated over them."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions, tier_roles)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if node == {"Ref": "TierRoleNames"}:
            return list(tier_roles)
        if set(node) == {"Ref"}:
            return "${" + node["Ref"] + "}"
        if set(node) == {"Fn::Sub"}:
            if isinstance(node["Fn::Sub"], str):
                return node["Fn::Sub"]
            template, variables = node["Fn::Sub"]
            variables = resolve(variables, conditions, tier_roles)
            assert all(isinstance(v, str) for v in variables.values()), node
            return _sub(template, variables)
        if set(node) == {"Fn::Join"}:
            delimiter, values = node["Fn::Join"]
            assert isinstance(delimiter, str), "Fn::Join takes a literal delimiter"
            values = resolve(values, conditions, tier_roles)
            assert all(isinstance(v, str) for v in values), node
            return delimiter.join(values)
        if set(node) == {"Fn::Split"}:
            delimiter, value = node["Fn::Split"]
            value = resolve(value, conditions, tier_roles)
            return value.split(delimiter)
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            return "GetAtt:" + (".".join(target) if isinstance(target, list) else target)
        assert not any(k.startswith("Fn::") for k in node), f"intrinsic not evaluated here: {node}"
        out = {}
        for key, value in node.items():
            value = resolve(value, conditions, tier_roles)
            if value is not NO_VALUE:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (resolve(x, conditions, tier_roles) for x in node) if v is not NO_VALUE]
    return node


def normalized(value, conditions):
    """The items built from TierRoleNames as the admin role's are written: the
    partition written out is the stack's (aws, or aws-cn where
    IsChinaPartition), ${aws:PrincipalAccount} is this role's account (the
    member's), and the role tag's variable is the hub account (its value, set
    by the stack; checked in test_the_hub_account_tag_is_the_roles_own)."""
    if isinstance(value, dict):
        return {k: normalized(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v, conditions) for v in value]
    if not isinstance(value, str):
        return value
    partition, other = ("aws-cn", "aws") if conditions["IsChinaPartition"] else ("aws", "aws-cn")
    assert f"arn:{other}:" not in value, f"{value}: partition {other} where the stack's is {partition}"
    value = value.replace(f"arn:{partition}:", "arn:${AWS::Partition}:")
    value = value.replace("${aws:PrincipalAccount}", "${AWS::AccountId}")
    return value.replace(HUB_TAG_VARIABLE, HUB_ACCOUNT)


def policy_documents():
    """The member role's identity policies: its inline ones, then the managed
    ones it names (the stack's own only)."""
    props = RESOURCES[ROLE_ID]["Properties"]
    for policy in props["Policies"]:
        yield policy["PolicyDocument"]
    for arn in props.get("ManagedPolicyArns", []):
        assert set(arn) == {"Ref"} and RESOURCES[arn["Ref"]]["Type"] == "AWS::IAM::ManagedPolicy", arn
        yield RESOURCES[arn["Ref"]]["Properties"]["PolicyDocument"]


def raw_statements(conditions, tier_roles):
    """The member role's identity-policy statements, as IAM receives them."""
    for document in policy_documents():
        yield from resolve(document, conditions, tier_roles)["Statement"]


def member_statements(conditions, tier_roles):
    for statement in raw_statements(conditions, tier_roles):
        yield normalized(statement, conditions)


def grants(conditions, tier_roles):
    out: dict[str, set[str]] = {}
    for statement in member_statements(conditions, tier_roles):
        for action in as_list(statement["Action"]):
            out.setdefault(action, set()).update(as_list(statement["Resource"]))
    return out


def configured_roles(tier_roles):
    """Each tier's role R as the ARNs name it: the admin role, then the tier roles."""
    return [ADMIN] + [n for n in tier_roles if n]


def entry(name):
    """The access entries of the hub account's role `name` (an entry ARN
    carries the role's name without its path)."""
    return f"{ENTRY_PREFIX}{HUB_ACCOUNT}/{name}/*"


def tier_entries(tier_roles):
    """Each tier role's entry and its shards' (R-*: an ARN pattern cannot say
    "digits", as in the hub)."""
    return {entry(r + suffix) for r in configured_roles(tier_roles) for suffix in ("", "-*")}


def tier_principals(tier_roles):
    """CreateAccessEntry's eks:principalArn: each tier role R of the hub
    account (any path), and its shards R-<k> on the shard path only."""
    return {
        f"{P}:iam::{HUB_ACCOUNT}:role/{shape.format(r)}"
        for r in configured_roles(tier_roles)
        for shape in ("{}", "*/{}", "eks-access-sync/{}-*")
    }


def expected_grants(tier_roles):
    entries = tier_entries(tier_roles)
    return {
        # No resource-level permissions exist for it.
        "eks:ListClusters": {"*"},
        "eks:DescribeCluster": {CLUSTERS},
        "eks:ListAccessEntries": {CLUSTERS},
        "eks:CreateAccessEntry": {CLUSTERS},
        "eks:DescribeAccessEntry": {ANY_ROLE_ENTRY} | entries,
        "eks:ListAssociatedAccessPolicies": {ANY_ROLE_ENTRY} | entries,
        "eks:UpdateAccessEntry": entries,
        "eks:DeleteAccessEntry": entries,
        "eks:AssociateAccessPolicy": entries,
        "eks:DisassociateAccessPolicy": entries,
    }


def arn_pattern(arn_format):
    """A Service Authorization Reference ARN format as a regex over the
    template's ARNs (${Partition} -> the partition, ${Region} -> *, ${Account}
    -> this account or the hub's)."""
    pattern = re.escape(arn_format).replace(re.escape(".*"), ".+")
    pattern = pattern.replace(re.escape("${Partition}"), re.escape("${AWS::Partition}"))
    pattern = pattern.replace(re.escape("${Region}"), r"\*")
    return pattern.replace(re.escape("${Account}"), re.escape("${AWS::AccountId}"))


# --------------------------------------------------------------------------
# One role, trusted by the hub's function role only
# --------------------------------------------------------------------------


def test_the_stack_creates_one_role_and_its_policy_and_nothing_else():
    assert sorted(RESOURCES) == sorted([ROLE_ID, ASSOCIATIONS_ID])
    roles = [lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::IAM::Role"]
    assert roles == [ROLE_ID]
    role = RESOURCES[ROLE_ID]
    assert role["Type"] == "AWS::IAM::Role"
    assert "Condition" not in role
    props = role["Properties"]
    # The name the hub computes the ARN from (arn:...:role/<name>, no path).
    assert props["RoleName"] == {"Ref": "MemberRoleName"}
    assert props["Path"] == "/"
    assert props["MaxSessionDuration"] == 3600
    # Its own inline policy and the stack's managed policy: no AWS managed
    # policy, no permissions boundary or other property that could widen it.
    assert set(props) == {
        "RoleName", "Path", "Description", "MaxSessionDuration", "Tags", "AssumeRolePolicyDocument", "Policies",
        "ManagedPolicyArns",
    }
    assert [p["PolicyName"] for p in props["Policies"]] == ["eks-access-sync-member"]
    assert props["ManagedPolicyArns"] == [{"Ref": ASSOCIATIONS_ID}]
    # The managed policy is attached to that role only (through the role, which
    # then waits for it), unconditionally.
    policy = RESOURCES[ASSOCIATIONS_ID]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert "Condition" not in policy
    assert set(policy["Properties"]) == {"Description", "PolicyDocument"}
    outputs = MEMBER["Outputs"]
    assert outputs["MemberRoleArn"]["Value"] == {"Fn::GetAtt": [ROLE_ID, "Arn"]}


def test_trust_is_exactly_the_hub_function_role_within_the_organization():
    trust = RESOURCES[ROLE_ID]["Properties"]["AssumeRolePolicyDocument"]
    for tier_roles, conditions in CASES:
        document = resolve(trust, conditions, tier_roles)
        assert document["Version"] == "2012-10-17"
        (statement,) = document["Statement"]
        assert set(statement) == {"Sid", "Effect", "Principal", "Action", "Condition"}, statement
        assert statement["Effect"] == "Allow"
        # The function role's ARN (it has no path), not the hub account's root:
        # no identity policy in the hub account can widen it.
        assert statement["Principal"] == {"AWS": HUB_FUNCTION_ROLE}
        # AssumeRole only: no sts:TagSession (a session tag would override the
        # role tag the policy reads), no SetSourceIdentity, no wildcard.
        assert statement["Action"] == "sts:AssumeRole"
        assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": "${OrganizationId}"}}


def test_trust_parameters_admit_only_ids_and_names():
    parameters = MEMBER["Parameters"]
    account = re.compile(parameters["HubAccountId"]["AllowedPattern"])
    assert account.fullmatch("123456789012")
    for bad in ("*", "12345678901", "1234567890123", "12345678901*", "arn:aws:iam::123456789012:root"):
        assert not account.fullmatch(bad), bad
    organization = re.compile(parameters["OrganizationId"]["AllowedPattern"])
    assert organization.fullmatch("o-a1b2c3d4e5")
    for bad in ("", "*", "o-*", "o-a1b2c3d4e5*", "r-a1b2"):
        assert not organization.fullmatch(bad), bad
    # Role names only: no wildcard or path can widen the principal or a grant.
    for name in ("HubFunctionRoleName", "MemberRoleName", "AdminRoleName"):
        pattern = re.compile(parameters[name]["AllowedPattern"])
        assert pattern.fullmatch("eks-access-sync-FunctionRole-AbC123"), name
        for bad in ("*", "eks-*", "eks-?", "team/eks", "", "a" * 65):
            assert not pattern.fullmatch(bad), (name, bad)
    tiers = re.compile(parameters["TierRoleNames"]["AllowedPattern"])
    for bad in ("*", "eks-*", "eks-?", "team/eks-edit"):
        assert not tiers.fullmatch(bad), bad
    # No default: each deployment names its hub and organization.
    for name in ("HubAccountId", "HubFunctionRoleName", "OrganizationId"):
        assert "Default" not in parameters[name], name


def test_the_hub_account_tag_is_the_roles_own():
    # The policy names the hub account through the role's tag (Fn::Join takes no
    # function in its delimiter). The stack sets it to HubAccountId; the trust
    # grants no sts:TagSession, so no session tag can override it.
    props = RESOURCES[ROLE_ID]["Properties"]
    assert props["Tags"] == [{"Key": HUB_TAG, "Value": {"Ref": "HubAccountId"}}]
    for tier_roles, conditions in CASES:
        for statement in raw_statements(conditions, tier_roles):
            text = json.dumps(statement)
            # No other tag or variable: ${aws:PrincipalAccount} is the member account.
            for variable in re.findall(r"\$\{aws:[^}]*\}", text):
                assert variable in (HUB_TAG_VARIABLE, "${aws:PrincipalAccount}"), (variable, statement["Sid"])


# --------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_every_action_is_on_the_allowlist(tier_roles, conditions):
    for statement in member_statements(conditions, tier_roles):
        assert statement["Effect"] == "Allow", statement["Sid"]
        assert not {"NotAction", "NotResource", "NotPrincipal", "Principal"} & set(statement), statement["Sid"]
        for action in as_list(statement["Action"]):
            assert "*" not in action and "?" not in action, (action, statement["Sid"])
            assert not action.lower().startswith(("iam:", "sts:", "organizations:")), action
            assert action in ALLOWED_ACTIONS, (action, statement["Sid"])
    # Each action the functions take is granted.
    assert set(grants(conditions, tier_roles)) == ALLOWED_ACTIONS


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_member_role_grants_exactly_the_narrowest_resources(tier_roles, conditions):
    assert grants(conditions, tier_roles) == expected_grants(tier_roles)


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_star_resource_only_for_list_clusters(tier_roles, conditions):
    for statement in member_statements(conditions, tier_roles):
        resources = as_list(statement["Resource"])
        if "*" in resources:
            # The one action without resource-level permissions, alone in its statement.
            assert as_list(statement["Action"]) == ["eks:ListClusters"], statement["Sid"]
            assert resources == ["*"], statement["Sid"]
            assert "Condition" not in statement
            assert EKS_SERVICE["Actions"]["listclusters"] == {}


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_resources_are_of_each_actions_resource_type(tier_roles, conditions):
    # A grant on an ARN of the wrong type (an access entry's action on a
    # cluster ARN, say) would match nothing in AWS.
    for statement in member_statements(conditions, tier_roles):
        for action in as_list(statement["Action"]):
            types = EKS_SERVICE["Actions"][action.split(":", 1)[1].lower()].get("Resources", [])
            if not types:
                continue
            patterns = [arn_pattern(f) for t in types for f in EKS_SERVICE["Resources"][t]["ARNFormats"]]
            for resource in as_list(statement["Resource"]):
                # The hub account stands where an access-entry ARN names the principal's account.
                assert any(re.fullmatch(p, resource) for p in patterns), (action, resource)
                if ":access-entry/" in resource:
                    # <cluster>/role/<principal account>/<role name>/<uuid>
                    cluster, kind, account, name, uuid = resource.split(":access-entry/", 1)[1].split("/")
                    assert (cluster, kind, uuid) == ("*", "role", "*"), resource


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_entries_written_are_the_hub_tier_roles_and_their_shards_only(tier_roles, conditions):
    allowed_names = {r + suffix for r in configured_roles(tier_roles) for suffix in ("", "-*")}
    for statement in member_statements(conditions, tier_roles):
        actions = set(as_list(statement["Action"]))
        for resource in as_list(statement["Resource"]):
            if ":access-entry/" not in resource:
                continue
            if resource == ANY_ROLE_ENTRY:
                # Any role's entry: read only.
                assert actions <= {"eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies"}, statement["Sid"]
                continue
            account, name = resource.removeprefix(ENTRY_PREFIX).split("/")[:2]
            # The hub's account, never the member's own roles or a wildcard account.
            assert account == HUB_ACCOUNT, (resource, statement["Sid"])
            assert name in allowed_names, (resource, statement["Sid"])
            assert "/user/" not in resource


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_access_entries_are_created_only_for_the_hub_tier_roles(tier_roles, conditions):
    creates = [s for s in member_statements(conditions, tier_roles) if "eks:CreateAccessEntry" in as_list(s["Action"])]
    assert len(creates) == 1
    (create,) = creates
    assert as_list(create["Action"]) == ["eks:CreateAccessEntry"]
    assert as_list(create["Resource"]) == [CLUSTERS]
    principals = as_list(create["Condition"]["StringLike"]["eks:principalArn"])
    assert len(principals) == len(set(principals))
    assert set(principals) == tier_principals(tier_roles)
    # With the default cluster tag, only on managed clusters (as the hub).
    if conditions["ClusterTagIsDefault"]:
        assert create["Condition"]["StringEquals"] == TAG_CONDITION
    else:
        assert set(create["Condition"]) == {"StringLike"}


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_listing_entries_carries_the_cluster_tag_condition_with_the_default_tag(tier_roles, conditions):
    (lists,) = [s for s in member_statements(conditions, tier_roles) if "eks:ListAccessEntries" in as_list(s["Action"])]
    assert as_list(lists["Action"]) == ["eks:ListAccessEntries"]
    if conditions["ClusterTagIsDefault"]:
        assert lists["Condition"] == {"StringEquals": TAG_CONDITION}
    else:
        assert "Condition" not in lists


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_policy_changes_are_the_four_tier_policies_only(tier_roles, conditions):
    for action in ("eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"):
        (statement,) = [s for s in member_statements(conditions, tier_roles) if action in as_list(s["Action"])]
        assert as_list(statement["Action"]) == [action]
        condition = statement["Condition"]["StringEquals"]
        assert set(statement["Condition"]) == {"StringEquals"}
        assert sorted(as_list(condition["eks:policyArn"])) == sorted(TIER_POLICIES), action
        if action == "eks:AssociateAccessPolicy":
            # The member stack does not see the hub's configuration: either scope.
            assert set(condition) == {"eks:policyArn", "eks:accessScope"}
            assert sorted(as_list(condition["eks:accessScope"])) == ["cluster", "namespace"]
        else:
            assert set(condition) == {"eks:policyArn"}


@pytest.mark.parametrize("tier_roles,conditions", CASES, ids=CASE_IDS)
def test_conditions_use_only_keys_their_actions_support(tier_roles, conditions):
    for statement in member_statements(conditions, tier_roles):
        keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
        for action in as_list(statement["Action"]):
            name = action.split(":", 1)[1]
            supported = set(ACTION_CONDITION_KEYS.get(action, set()))
            for resource_type in EKS_SERVICE["Actions"][name.lower()].get("Resources", []):
                supported |= set(EKS_SERVICE["Resources"][resource_type].get("ConditionKeys", []))
            for key in keys:
                generic = re.sub(r"^(aws:ResourceTag/).*$", r"\1${TagKey}", key)
                assert key in supported or generic in supported, (action, key, statement["Sid"])


def policy_chars(documents, tier_roles):
    """Policies, minified, as IAM counts them (whitespace excluded), with
    sample values for the parameters; the policy variables stay as IAM
    receives them."""
    conditions = {name: True for name in CONDITION_NAMES} | {"IsChinaPartition": False}
    sample = {
        "${AWS::Partition}": "aws",
        "${AWS::AccountId}": "210987654321",
        "${HubAccountId}": "123456789012",
        "${AdminRoleName}": "eks-admin",
    }
    total = 0
    for document in documents:
        resolved = resolve(document, conditions | derived_conditions(tier_roles), tier_roles)
        text = json.dumps(resolved, separators=(",", ":"))
        for name, value in sample.items():
            text = text.replace(name, value)
        assert "${" not in text.replace("${aws:", ""), text
        total += len(text)
    return total


def inline_policy_chars(tier_roles):
    return policy_chars([p["PolicyDocument"] for p in RESOURCES[ROLE_ID]["Properties"]["Policies"]], tier_roles)


def managed_policy_chars(tier_roles):
    return policy_chars([RESOURCES[ASSOCIATIONS_ID]["Properties"]["PolicyDocument"]], tier_roles)


# IAM: a role's inline policies together, and a managed policy, whitespace
# excluded (neither adjustable).
ROLE_INLINE_POLICY_MAX_CHARS = 10_240
MANAGED_POLICY_MAX_CHARS = 6_144


def test_member_policies_fit_their_quotas_with_nine_tier_roles():
    # The hub holds nine tier roles of about 11 characters (README "Limits"):
    # the member role must hold the same list, or its stack fails to deploy.
    assert inline_policy_chars(NINE_TIER_ROLES) <= ROLE_INLINE_POLICY_MAX_CHARS
    assert managed_policy_chars(NINE_TIER_ROLES) <= MANAGED_POLICY_MAX_CHARS


def test_cfn_lint_passes():
    result = subprocess.run(
        [str(pathlib.Path(sys.executable).parent / "cfn-lint"), str(MEMBER_PATH)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------
# The hub's half: its function role may assume the member role, nothing more
# --------------------------------------------------------------------------


def test_member_and_hub_agree_on_the_names():
    member, hub = MEMBER["Parameters"], HUB["Parameters"]
    # The member role is at path "/" and named MemberRoleName in every account:
    # the hub's grant is role/<MemberRoleName>, with no path.
    assert member["MemberRoleName"]["Default"] in hub["MemberRoleName"]["Description"]
    for name in ("AdminRoleName", "TierRoleNames", "ClusterTag"):
        assert member[name]["Default"] == hub[name]["Default"], name
        assert member[name]["AllowedPattern"] == hub[name]["AllowedPattern"], name
    # The member trusts role/<HubFunctionRoleName>: the hub's function role has no
    # path, and no fixed name (CloudFormation names it; FunctionRoleArn gives it).
    function_role = HUB_RESOURCES["FunctionRole"]["Properties"]
    assert "Path" not in function_role and "RoleName" not in function_role
    assert HUB["Outputs"]["FunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}


def test_hub_member_role_name_admits_no_wildcard_or_path():
    hub = HUB["Parameters"]
    assert hub["MemberRoleName"]["Default"] == ""
    pattern = re.compile(hub["MemberRoleName"]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("eks-access-sync-member")
    for bad in ("*", "eks-*", "eks-?", "team/eks-access-sync-member", "a" * 65):
        assert not pattern.fullmatch(bad), bad
    organization = re.compile(hub["OrganizationId"]["AllowedPattern"])
    for bad in ("*", "o-*", "o-a1b2c3d4e5*"):
        assert not organization.fullmatch(bad), bad


def test_hub_requires_the_organization_and_a_name_of_no_tier_role_with_a_member_role():
    rule = HUB["Rules"]["MemberRoleParameters"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MemberRoleName"}, ""]}]}
    assertions = [a["Assert"] for a in rule["Assertions"]]
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]} in assertions
    assert {"Fn::Not": [{"Fn::Equals": [{"Ref": "MemberRoleName"}, {"Ref": "AdminRoleName"}]}]} in assertions
    assert {"Fn::Not": [{"Fn::Contains": [{"Ref": "TierRoleNames"}, {"Ref": "MemberRoleName"}]}]} in assertions


def test_hub_member_policy_exists_only_with_a_member_role_name():
    policy = HUB_RESOURCES["MemberAccountsPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    assert policy["Condition"] == "HasMemberRole"
    assert HUB["Conditions"]["HasMemberRole"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "MemberRoleName"}, ""]}]}
    # Attached by FunctionRole's ManagedPolicyArns only, under the same condition.
    assert not {"Roles", "Users", "Groups"} & set(policy["Properties"])
    holders = [
        lid for lid, r in HUB_RESOURCES.items()
        if any("MemberAccountsPolicy" in json.dumps(a) for a in r.get("Properties", {}).get("ManagedPolicyArns", []))
    ]
    assert holders == ["FunctionRole"]
    assert {"Fn::If": ["HasMemberRole", {"Ref": "MemberAccountsPolicy"}, {"Ref": "AWS::NoValue"}]} in \
        HUB_RESOURCES["FunctionRole"]["Properties"]["ManagedPolicyArns"]


@pytest.mark.parametrize("conditions", list(hub_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_hub_function_role_assumes_only_the_member_role_name_in_the_organization(conditions):
    # Every policy of the hub (a role's inline ones, each managed one) that
    # allows an STS action: the member-accounts policy only.
    allowing_sts = set()
    for logical_id, resource in HUB_RESOURCES.items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Role":
            documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        elif resource["Type"] in ("AWS::IAM::ManagedPolicy", "AWS::IAM::Policy"):
            documents = [props["PolicyDocument"]]
        else:
            continue
        for document in documents:
            for statement in hub_resolve(document, conditions)["Statement"]:
                actions = [a.lower() for a in as_list(statement["Action"])]
                if statement["Effect"] == "Allow" and any(a.startswith("sts:") or a == "*" for a in actions):
                    allowing_sts.add(logical_id)
    assert allowing_sts == {"MemberAccountsPolicy"}
    # What the function role holds under these conditions: nothing without
    # MemberRoleName, else that one statement.
    attached = [s for s in hub_statements("FunctionRole", conditions) if "sts:AssumeRole" in as_list(s["Action"])]
    if not conditions["HasMemberRole"]:
        assert attached == []
        return
    (statement,) = attached
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["sts:AssumeRole"]
    # The member role's name, in any account: no role/*, no path, no other name.
    assert as_list(statement["Resource"]) == [MEMBER_ROLES]
    assert MEMBER_ROLES == f"{P}:iam::*:role/${{MemberRoleName}}"
    # ... of the organization only (aws:ResourceOrgID: the account owning the role).
    assert statement["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
