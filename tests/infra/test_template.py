"""Security and wiring properties of infra/template.yaml.

The template is parsed with cfn-lint's own decoder so that the short-form
intrinsics (!Ref, !Sub, !GetAtt, !If) come back as their long forms. Each
`Fn::If` is expanded for every combination of the template's conditions, so a
property must hold whichever way a deployment sets its parameters. The one
condition computed from a list parameter, HasTierRoles, follows the value given
to TierRoleNames, and the lists built from it (Fn::Join, Fn::Split, Fn::Sub with
variables) are evaluated, so a policy is checked as IAM would receive it.
"""

from __future__ import annotations

import fnmatch
import itertools
import json
import pathlib
import re
import tomllib

import pytest
from cfnlint.decode import decode_str

ROOT = pathlib.Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "infra" / "template.yaml"

FUNCTIONS = {"IamEventsFunction": "iam-events", "ReconcileFunction": "reconcile"}

# Configuration variable -> template parameter feeding it.
CONFIG_ENV = {
    "ACCESS_CONFIG": "AccessConfig",
    "ADMIN_ROLE_NAME": "AdminRoleName",
    "ADMIN_USER_TAG": "AdminUserTag",
    "CLUSTER_TAG": "ClusterTag",
    "K8S_USERNAME": "K8sUsername",
    "K8S_GROUPS": "K8sGroups",
    "TRUST_STATEMENT_SID": "TrustStatementSid",
    "TRUST_POLICY_MAX_CHARS": "TrustPolicyMaxChars",
    "REQUIRE_SESSION_NAME": "RequireSessionName",
    "CLUSTER_REGIONS": "ClusterRegions",
    "CLUSTER_CONCURRENCY": "ClusterConcurrency",
    "RUST_LOG": "LogLevel",
}

# Defaults of the core's configuration (functions/core config).
CORE_DEFAULTS = {
    "AdminUserTag": "eks-access=admin",
    "ClusterTag": "eks-access-sync/managed=true",
    "K8sUsername": "admin:{{AccessKeyID}}:{{SessionName}}",
    "K8sGroups": "system:masters",
    "TrustStatementSid": "EksAccessSyncAdmins",
    "TrustPolicyMaxChars": 2048,
    "RequireSessionName": "false",
    "ClusterConcurrency": 100,
}

# The only actions allowed on Resource "*": none has resource-level permissions
# (Service Authorization Reference, IAM and EKS: no resource type listed).
STAR_ACTIONS = {"iam:GetAccountAuthorizationDetails", "iam:ListRoles", "eks:ListClusters"}

P = "arn:${AWS::Partition}"
ADMIN_ROLE = [
    f"{P}:iam::${{AWS::AccountId}}:role/${{AdminRoleName}}",
    f"{P}:iam::${{AWS::AccountId}}:role/*/${{AdminRoleName}}",
]
CLUSTERS = f"{P}:eks:*:${{AWS::AccountId}}:cluster/*"
ADMIN_ENTRY = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/role/${{AWS::AccountId}}/${{AdminRoleName}}/*"
# Any role's entry, of any principal account (read only: retired tiers' entries are found by it).
ANY_ROLE_ENTRY = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/role/*/*/*"
USER_ENTRY = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/user/${{AWS::AccountId}}/*"
USERS = f"{P}:iam::${{AWS::AccountId}}:user/*"
LOGS = ["GetAtt:IamEventsLogGroup.Arn", "GetAtt:ReconcileLogGroup.Arn"]
LOCK_TABLE = "GetAtt:TrustLockTable.Arn"
# Shard roles (issue 11): shards 2..N of a tier, created by the functions under this path.
SHARD_PATH = "/eks-access-sync/"
SHARDS = f"{P}:iam::${{AWS::AccountId}}:role{SHARD_PATH}*"
# The deny-everything boundary they are created with (Ref of a managed policy is its ARN).
BOUNDARY_ID = "ShardPermissionsBoundary"
BOUNDARY = f"Ref:{BOUNDARY_ID}"
# The admin role's shards (<AdminRoleName>-<k>) as CreateAccessEntry's eks:principalArn
# names them: on the shard path only.
ADMIN_SHARDS = f"{P}:iam::${{AWS::AccountId}}:role{SHARD_PATH}${{AdminRoleName}}-*"
# Their access entries: the entry ARN carries the role's name without its path, and an
# ARN pattern cannot say "digits", so R-* (documented in the template).
ADMIN_SHARD_ENTRY = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/role/${{AWS::AccountId}}/${{AdminRoleName}}-*/*"
# The actions on a shard's entry besides associating and disassociating the tier's
# policy (one statement: create, and what a tier role's own entry is given).
SHARD_ENTRY_ACTIONS = [
    "eks:DescribeAccessEntry",
    "eks:UpdateAccessEntry",
    "eks:ListAssociatedAccessPolicies",
    "eks:DeleteAccessEntry",
]
ENTRY_ACTIONS = SHARD_ENTRY_ACTIONS + ["eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"]

# Every action the function role may take -> exactly the resources it may take it on.
EXPECTED_FUNCTION_GRANTS = {
    "iam:GetRole": set(ADMIN_ROLE) | {SHARDS},
    "iam:UpdateAssumeRolePolicy": set(ADMIN_ROLE) | {SHARDS},
    # With the boundary condition (checked below).
    "iam:CreateRole": {SHARDS},
    "iam:ListRoles": {"*"},
    "iam:GetUser": {USERS},
    "iam:ListUserTags": {USERS},
    "iam:ListGroupsForUser": {USERS},
    "iam:GetAccountAuthorizationDetails": {"*"},
    "eks:ListClusters": {"*"},
    "eks:DescribeCluster": {CLUSTERS},
    "eks:ListAccessEntries": {CLUSTERS},
    "eks:CreateAccessEntry": {CLUSTERS},
    # The admin role's entry and its shards' (ADMIN_SHARD_ENTRY) alike.
    "eks:DescribeAccessEntry": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY, ANY_ROLE_ENTRY, USER_ENTRY},
    "eks:UpdateAccessEntry": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY},
    # The access audit reads user entries' policies too.
    "eks:ListAssociatedAccessPolicies": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY, ANY_ROLE_ENTRY, USER_ENTRY},
    "eks:AssociateAccessPolicy": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY},
    # A tier's previous policy, when its policy changed (the four tier policies only).
    "eks:DisassociateAccessPolicy": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY},
    # Users' entries (offboarding); the admin role's own (re-created role) and its
    # shards' (stale, or a retired tier's).
    "eks:DeleteAccessEntry": {ADMIN_ENTRY, ADMIN_SHARD_ENTRY, USER_ENTRY},
    "logs:CreateLogStream": set(LOGS),
    "logs:PutLogEvents": set(LOGS),
    "sqs:SendMessage": {"GetAtt:FailureQueue.Arn"},
    "events:PutEvents": {f"{P}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/default"},
    "dynamodb:PutItem": {LOCK_TABLE},
    "dynamodb:DeleteItem": {LOCK_TABLE},
}

# Member accounts (issue 12): with MemberRoleName set (HasMemberRole), the
# member stack's role (infra/member.yaml, path "/") in any account of the
# organization, and nothing more (tests/infra/test_member.py).
MEMBER_ROLES = f"{P}:iam::*:role/${{MemberRoleName}}"


def expected_function_grants(conditions):
    """EXPECTED_FUNCTION_GRANTS, with sts:AssumeRole on the member roles when
    MemberRoleName is set."""
    if conditions["HasMemberRole"]:
        return EXPECTED_FUNCTION_GRANTS | {"sts:AssumeRole": {MEMBER_ROLES}}
    return EXPECTED_FUNCTION_GRANTS


def expected_managed_policies(conditions):
    """FunctionRole's ManagedPolicyArns: the stack's own policies only."""
    return ["Ref:ShardRolesPolicy"] + (["Ref:MemberAccountsPolicy"] if conditions["HasMemberRole"] else [])


EXPECTED_ADMIN_ROLE_GRANTS = {"eks:DescribeCluster": {CLUSTERS}}

TAG_CONDITION = {"StringEquals": {"aws:ResourceTag/eks-access-sync/managed": "true"}}


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
    template, matches = decode_str(TEMPLATE_PATH.read_text())
    assert not matches, f"template does not parse: {matches}"
    return _plain(template)


TEMPLATE = _load()
RESOURCES = TEMPLATE["Resources"]
# Conditions computed from a list parameter: they follow the parameter's value.
DERIVED_CONDITIONS = {"HasTierRoles"}
CONDITION_NAMES = sorted(set(TEMPLATE.get("Conditions", {})) - DERIVED_CONDITIONS)
NO_VALUE = object()
# A CommaDelimitedList left at its default "" is [""] (its Fn::Join is "").
NO_TIER_ROLES = [""]
TIER_ROLES = ["eks-edit", "eks-view"]


def derived_conditions(tier_roles):
    return {"HasTierRoles": "".join(tier_roles) != ""}


def all_condition_values(tier_roles=NO_TIER_ROLES):
    for values in itertools.product([True, False], repeat=len(CONDITION_NAMES)):
        yield dict(zip(CONDITION_NAMES, values)) | derived_conditions(tier_roles)


def _sub_with_variables(template, variables):
    """Fn::Sub's list form: the given variables replaced; ${!X} -> ${X}; every
    other ${...} (parameters, pseudo parameters) left as written."""
    def replace(match):
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        return variables.get(name, match.group(0))

    return re.sub(r"\$\{([^}]*)\}", replace, template)


def resolve(node, conditions, tier_roles=None):
    """Expand Fn::If for the given condition values, drop AWS::NoValue, and
    flatten Fn::Sub, Fn::GetAtt and a Ref to a resource ("Ref:<id>") to
    comparable strings. Ref TierRoleNames is the list `tier_roles` (its
    default, [""], when None), and the Fn::Join, Fn::Split and Fn::Sub built
    from it are evaluated."""
    tier_roles = NO_TIER_ROLES if tier_roles is None else tier_roles
    conditions = conditions | derived_conditions(tier_roles)
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            name, when_true, when_false = node["Fn::If"]
            return resolve(when_true if conditions[name] else when_false, conditions, tier_roles)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        if node == {"Ref": "TierRoleNames"}:
            return list(tier_roles)
        if set(node) == {"Ref"} and node["Ref"] in RESOURCES:
            return "Ref:" + node["Ref"]
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return node["Fn::Sub"]
        if set(node) == {"Fn::Sub"}:
            template, variables = node["Fn::Sub"]
            variables = resolve(variables, conditions, tier_roles)
            assert all(isinstance(v, str) for v in variables.values()), node
            return _sub_with_variables(template, variables)
        if set(node) == {"Fn::Join"}:
            delimiter, values = node["Fn::Join"]
            assert isinstance(delimiter, str), "Fn::Join takes a literal delimiter"
            values = resolve(values, conditions, tier_roles)
            assert all(isinstance(v, str) for v in values), node
            return delimiter.join(values)
        if set(node) == {"Fn::Split"}:
            delimiter, value = node["Fn::Split"]
            value = resolve(value, conditions, tier_roles)
            assert isinstance(delimiter, str) and isinstance(value, str), node
            return value.split(delimiter)
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            return "GetAtt:" + (".".join(target) if isinstance(target, list) else target)
        out = {}
        for key, value in node.items():
            value = resolve(value, conditions, tier_roles)
            if value is not NO_VALUE:
                out[key] = value
        return out
    if isinstance(node, list):
        return [v for v in (resolve(x, conditions, tier_roles) for x in node) if v is not NO_VALUE]
    return node


def as_list(value):
    return value if isinstance(value, list) else [value]


def policy_documents(resource, conditions):
    """A role's identity policies: its inline ones, then the stack's managed
    policies it names in ManagedPolicyArns under the given conditions (an AWS
    managed one fails)."""
    props = resource.get("Properties", {})
    kind = resource["Type"]
    if kind == "AWS::IAM::Role":
        for policy in props.get("Policies", []):
            yield policy["PolicyName"], policy["PolicyDocument"]
        for arn in resolve(props.get("ManagedPolicyArns", []), conditions):
            assert arn.startswith("Ref:"), arn
            policy_id = arn.removeprefix("Ref:")
            assert RESOURCES[policy_id]["Type"] == "AWS::IAM::ManagedPolicy", arn
            # A conditional policy is named only under its own condition.
            if "Condition" in RESOURCES[policy_id]:
                assert conditions[RESOURCES[policy_id]["Condition"]], arn
            yield policy_id, RESOURCES[policy_id]["Properties"]["PolicyDocument"]
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy"):
        yield props.get("PolicyName", "managed"), props["PolicyDocument"]


def grants(logical_id, conditions):
    """action -> set of resources, over every identity policy of one role."""
    out: dict[str, set[str]] = {}
    for _, doc in policy_documents(RESOURCES[logical_id], conditions):
        for statement in resolve(doc, conditions)["Statement"]:
            assert statement["Effect"] == "Allow"
            assert "NotAction" not in statement and "NotResource" not in statement
            for action in as_list(statement["Action"]):
                out.setdefault(action, set()).update(as_list(statement["Resource"]))
    return out


def statements(logical_id, conditions):
    for _, doc in policy_documents(RESOURCES[logical_id], conditions):
        yield from resolve(doc, conditions)["Statement"]


def function_props(logical_id):
    """A function's properties with the Globals merged in, as SAM does."""
    merged = dict(TEMPLATE.get("Globals", {}).get("Function", {}))
    own = RESOURCES[logical_id]["Properties"]
    for key, value in own.items():
        if key == "Environment" and "Environment" in merged:
            variables = dict(merged["Environment"]["Variables"])
            variables.update(value.get("Variables", {}))
            merged["Environment"] = {"Variables": variables}
        else:
            merged[key] = value
    return merged


def rules_targeting(function_id):
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        for target in resource["Properties"]["Targets"]:
            if target["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}:
                yield logical_id, resource["Properties"], target


# --------------------------------------------------------------------------
# Least privilege
# --------------------------------------------------------------------------


def iam_resources():
    kinds = ("AWS::IAM::Role", "AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::RolePolicy")
    return [lid for lid, r in RESOURCES.items() if r["Type"] in kinds]


def test_only_the_expected_iam_resources_exist():
    # A new role or policy must be added to this test, with its grants.
    assert sorted(iam_resources()) == sorted(
        ["AdminRole", "FunctionRole", BOUNDARY_ID, "MemberAccountsPolicy", "ShardRolesPolicy"]
    )


def test_sam_generates_no_role_for_the_functions():
    # An explicit Role keeps SAM from adding AWSLambdaBasicExecutionRole
    # (logs:* on "*") and policies of its own.
    for function_id in FUNCTIONS:
        props = RESOURCES[function_id]["Properties"]
        assert props["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
        assert "Policies" not in props


@pytest.mark.parametrize("conditions", list(all_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_function_role_grants_exactly_the_narrowest_resources(conditions):
    assert grants("FunctionRole", conditions) == expected_function_grants(conditions)
    role = resolve(RESOURCES["FunctionRole"], conditions)["Properties"]
    # The stack's own shard-role policy, and with MemberRoleName its member-role
    # policy: no AWS managed policy.
    assert role["ManagedPolicyArns"] == expected_managed_policies(conditions)


@pytest.mark.parametrize("conditions", list(all_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_star_resource_only_for_actions_without_resource_level_permissions(conditions):
    for logical_id in iam_resources():
        for statement in statements(logical_id, conditions):
            if statement["Effect"] != "Allow":
                # The shard boundary's deny-everything (checked on its own below).
                assert logical_id == BOUNDARY_ID, statement
                continue
            actions = set(as_list(statement["Action"]))
            assert not any("*" in action for action in actions), statement
            if "*" in as_list(statement["Resource"]):
                assert as_list(statement["Resource"]) == ["*"], statement
                assert actions <= STAR_ACTIONS, statement


@pytest.mark.parametrize("conditions", list(all_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_only_the_admin_role_and_shard_roles_trust_policies_are_writable(conditions):
    writes = [
        s for s in statements("FunctionRole", conditions) if "iam:UpdateAssumeRolePolicy" in as_list(s["Action"])
    ]
    assert sorted(sorted(as_list(s["Resource"])) for s in writes) == sorted([sorted(ADMIN_ROLE), [SHARDS]])
    assert not any(a.startswith("iam:") and a.endswith(("Policy", "PolicyVersion")) and a != "iam:UpdateAssumeRolePolicy"
                   for a in grants("FunctionRole", conditions))


def test_eks_writes_carry_the_cluster_tag_condition_with_the_default_tag():
    conditions = {name: True for name in CONDITION_NAMES}
    checked = set()
    for statement in statements("FunctionRole", conditions):
        for action in {"eks:ListAccessEntries", "eks:CreateAccessEntry"} & set(as_list(statement["Action"])):
            # The admin role's entry and its shards' (two CreateAccessEntry statements).
            assert statement["Condition"]["StringEquals"] == TAG_CONDITION["StringEquals"], statement["Sid"]
            checked.add(action)
    assert checked == {"eks:ListAccessEntries", "eks:CreateAccessEntry"}
    for statement in statements("AdminRole", conditions):
        assert statement["Condition"] == TAG_CONDITION


def test_access_entries_are_created_only_for_the_admin_role_with_the_admin_policy():
    for conditions in all_condition_values():
        creates = [s for s in statements("FunctionRole", conditions) if "eks:CreateAccessEntry" in as_list(s["Action"])]
        principals = [p for s in creates for p in as_list(s["Condition"]["StringLike"]["eks:principalArn"])]
        # The admin role (any path), and its shards on the shard path.
        assert sorted(principals) == sorted(ADMIN_ROLE + [ADMIN_SHARDS])
        associates = [
            s for s in statements("FunctionRole", conditions) if "eks:AssociateAccessPolicy" in as_list(s["Action"])
        ]
        assert len(associates) == 2
        for statement in associates:
            associate = statement["Condition"]["StringEquals"]
            if conditions["HasAccessConfig"]:
                # The configuration's tiers: the four policies it accepts, either scope.
                assert associate == TIER_ASSOCIATE_CONDITION
            else:
                assert associate == {
                    "eks:policyArn": f"{P}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                    "eks:accessScope": "cluster",
                }


TIER_ASSOCIATE_CONDITION = {
    "eks:policyArn": [
        f"{P}:eks::aws:cluster-access-policy/AmazonEKS{name}Policy"
        for name in ("ClusterAdmin", "Admin", "Edit", "View")
    ],
    "eks:accessScope": ["cluster", "namespace"],
}


def test_the_only_role_entries_that_may_be_deleted_are_the_admin_roles_and_its_shards():
    for conditions in all_condition_values():
        deletes = [
            s for s in statements("FunctionRole", conditions) if "eks:DeleteAccessEntry" in as_list(s["Action"])
        ]
        role_entries = [r for s in deletes for r in as_list(s["Resource"]) if "/role/" in r]
        assert sorted(role_entries) == sorted([ADMIN_ENTRY, ADMIN_SHARD_ENTRY])
        for s in deletes:
            if ADMIN_ENTRY in as_list(s["Resource"]):
                assert as_list(s["Action"]) == ["eks:DeleteAccessEntry"], s
                assert as_list(s["Resource"]) == [ADMIN_ENTRY], s
            if ADMIN_SHARD_ENTRY in as_list(s["Resource"]):
                # The shards' entries: the same actions as the admin role's own, in one statement.
                assert sorted(as_list(s["Action"])) == sorted(SHARD_ENTRY_ACTIONS), s
                assert as_list(s["Resource"]) == [ADMIN_SHARD_ENTRY], s


# --------------------------------------------------------------------------
# Access tiers: ACCESS_CONFIG and the adopted tier roles (TierRoleNames)
# --------------------------------------------------------------------------


def tier(item, name):
    """An item naming the admin role, for the tier role `name` instead."""
    return item.replace("${AdminRoleName}", name)


def with_tiers(items, tier_roles=TIER_ROLES):
    return set(items) | {tier(i, n) for i in items for n in tier_roles}


def normalized(value, conditions):
    """The tier items as the admin's are written: the policy variable
    ${aws:PrincipalAccount} is this role's account, and the partition written
    out is the stack's (aws, or aws-cn where IsChinaPartition)."""
    if isinstance(value, dict):
        return {k: normalized(v, conditions) for k, v in value.items()}
    if isinstance(value, list):
        return [normalized(v, conditions) for v in value]
    if not isinstance(value, str):
        return value
    partition, other = ("aws-cn", "aws") if conditions["IsChinaPartition"] else ("aws", "aws-cn")
    assert f"arn:{other}:" not in value, f"{value}: partition {other} where the stack's is {partition}"
    value = value.replace(f"arn:{partition}:", "arn:${AWS::Partition}:")
    return value.replace("${aws:PrincipalAccount}", "${AWS::AccountId}")


def tier_statements(conditions, tier_roles=TIER_ROLES):
    for _, doc in policy_documents(RESOURCES["FunctionRole"], conditions):
        for statement in resolve(doc, conditions, tier_roles)["Statement"]:
            yield normalized(statement, conditions)


def string_lists(statement):
    """(where, values) for the Resource and each condition value of a statement."""
    yield "Resource", as_list(statement["Resource"])
    for operator, keys in statement.get("Condition", {}).items():
        for key, values in keys.items():
            yield f"{operator} {key}", as_list(values)


def test_access_config_and_tier_role_parameters():
    parameters = TEMPLATE["Parameters"]
    access = parameters["AccessConfig"]
    assert access["Type"] == "String"
    assert access["Default"] == ""
    # The core refuses a file over 3,072 bytes; Lambda allows 4 KB of variables in all.
    assert access["MaxLength"] == 3072
    roles = parameters["TierRoleNames"]
    assert roles["Type"] == "CommaDelimitedList"
    assert roles["Default"] == ""
    assert "adopted" in roles["Description"] and "does not create" in roles["Description"]
    # Each name is a role name: no wildcard can widen a grant built from it.
    pattern = re.compile(roles["AllowedPattern"])
    for name in ("eks-edit", "eks.view@team_a+=", "", "a" * 64):
        assert pattern.fullmatch(name), name
    for name in ("*", "eks-*", "eks-?", "team/eks-edit", "a" * 65, "arn:aws:iam::1:role/x"):
        assert not pattern.fullmatch(name), name


def test_has_tier_roles_is_false_for_the_default_list_only():
    condition = TEMPLATE["Conditions"]["HasTierRoles"]
    assert condition == {"Fn::Not": [{"Fn::Equals": [{"Fn::Join": ["", {"Ref": "TierRoleNames"}]}, ""]}]}
    assert derived_conditions(NO_TIER_ROLES) == {"HasTierRoles": False}
    assert derived_conditions([]) == {"HasTierRoles": False}
    assert derived_conditions(["eks-edit"]) == {"HasTierRoles": True}


@pytest.mark.parametrize("conditions", list(all_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_without_tier_roles_no_statement_names_an_empty_or_extra_role(conditions):
    # The default [""] and an empty list give exactly the single-tier grants.
    for tier_roles in (NO_TIER_ROLES, []):
        for statement in tier_statements(conditions, tier_roles):
            for where, values in string_lists(statement):
                # (A Ref left as written, such as OrganizationId's, names no role.)
                strings = [v for v in values if isinstance(v, str)]
                assert not any(v.endswith(("role/", "role/*/", "trust-policy/")) for v in strings), (where, statement)
                assert not any("PrincipalAccount" in v for v in strings), (where, statement)


@pytest.mark.parametrize("conditions", list(all_condition_values(TIER_ROLES)), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_every_list_naming_the_admin_role_names_the_tier_roles_and_nothing_more(conditions):
    naming_admin = 0
    for statement in tier_statements(conditions):
        for where, values in string_lists(statement):
            admin_items = [v for v in values if "${AdminRoleName}" in v]
            if admin_items:
                naming_admin += 1
                assert set(values) == with_tiers(admin_items), (where, statement["Sid"])
                assert len(values) == len(set(values)), (where, statement["Sid"])
            else:
                # A list that does not name the admin role names no tier role either.
                assert not any(n in v for v in values for n in TIER_ROLES), (where, statement["Sid"])
    # Trust policy, lease, CreateAccessEntry's principal, and the entries managed,
    # deleted, associated and disassociated; the shards' principal, and their
    # entries managed (and deleted), associated and disassociated.
    assert naming_admin == 11


@pytest.mark.parametrize("conditions", list(all_condition_values(TIER_ROLES)), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_function_role_grants_with_tier_roles(conditions):
    got: dict[str, set[str]] = {}
    for statement in tier_statements(conditions):
        for action in as_list(statement["Action"]):
            got.setdefault(action, set()).update(as_list(statement["Resource"]))
    expected = {
        action: with_tiers(resources) if any("${AdminRoleName}" in r for r in resources) else resources
        for action, resources in expected_function_grants(conditions).items()
    }
    assert got == expected
    create = [
        p for s in tier_statements(conditions) if "eks:CreateAccessEntry" in as_list(s["Action"])
        for p in as_list(s["Condition"]["StringLike"]["eks:principalArn"])
    ]
    assert sorted(create) == sorted(with_tiers(ADMIN_ROLE + [ADMIN_SHARDS]))
    (lease,) = [s for s in tier_statements(conditions) if s["Resource"] == LOCK_TABLE]
    assert lease["Condition"] == {
        "ForAllValues:StringEquals": {
            "dynamodb:LeadingKeys": ["trust-policy/${AdminRoleName}", "trust-policy/eks-edit", "trust-policy/eks-view"]
        }
    }
    writes = [s for s in tier_statements(conditions) if "iam:UpdateAssumeRolePolicy" in as_list(s["Action"])]
    assert sorted(sorted(as_list(s["Resource"])) for s in writes) == sorted([sorted(with_tiers(ADMIN_ROLE)), [SHARDS]])


@pytest.mark.parametrize("conditions", list(all_condition_values(TIER_ROLES)), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_tier_roles_entries_get_the_four_tier_policies_only_with_an_access_config(conditions):
    # The tier roles' entries, and their shards' (a statement of ShardRolesPolicy).
    associates = [s for s in tier_statements(conditions) if "eks:AssociateAccessPolicy" in as_list(s["Action"])]
    assert sorted(sorted(as_list(s["Resource"])) for s in associates) == sorted(
        [sorted(with_tiers([ADMIN_ENTRY])), sorted(with_tiers([ADMIN_SHARD_ENTRY]))]
    )
    for associate in associates:
        assert as_list(associate["Action"]) == ["eks:AssociateAccessPolicy"]
        if conditions["HasAccessConfig"]:
            assert associate["Condition"] == {"StringEquals": TIER_ASSOCIATE_CONDITION}
        else:
            assert associate["Condition"] == {"StringEquals": {
                "eks:policyArn": f"{P}:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy",
                "eks:accessScope": "cluster",
            }}


@pytest.mark.parametrize("tier_roles", [NO_TIER_ROLES, TIER_ROLES], ids=["single-tier", "tiers"])
def test_any_role_entry_is_readable_but_only_tier_role_entries_are_deletable(tier_roles):
    for conditions in all_condition_values(tier_roles):
        statements_ = list(tier_statements(conditions, tier_roles))
        # Reading: every role's entry (a retired tier's is told by its groups).
        readers = [s for s in statements_ if ANY_ROLE_ENTRY in as_list(s["Resource"])]
        assert len(readers) == 1
        assert sorted(as_list(readers[0]["Action"])) == ["eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies"]
        assert as_list(readers[0]["Resource"]) == [ANY_ROLE_ENTRY]
        # No write reaches a role entry by a wildcard name.
        for statement in statements_:
            if statement is readers[0]:
                continue
            for resource in as_list(statement["Resource"]):
                assert "/role/*/" not in resource.split(":access-entry/")[-1], statement["Sid"]
        # Deleting: the admin role's and the configured tier roles' entries, and
        # their shards' (R-*), only.
        deletable = {
            r for s in statements_ if "eks:DeleteAccessEntry" in as_list(s["Action"])
            for r in as_list(s["Resource"]) if "/role/" in r
        }
        names = [n for n in tier_roles if n]
        assert deletable == with_tiers([ADMIN_ENTRY, ADMIN_SHARD_ENTRY], names)


def test_iam_event_users_groups_are_readable():
    # A tier selecting members by IAM group: the event's user's groups
    # (ListGroupsForUser), on users only; both functions run as FunctionRole.
    for tier_roles in (NO_TIER_ROLES, TIER_ROLES):
        for conditions in all_condition_values(tier_roles):
            readers = [
                s for s in tier_statements(conditions, tier_roles) if "iam:ListGroupsForUser" in as_list(s["Action"])
            ]
            assert len(readers) == 1
            assert as_list(readers[0]["Resource"]) == [USERS]
            assert "Condition" not in readers[0]
    assert RESOURCES["IamEventsFunction"]["Properties"]["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}


# --------------------------------------------------------------------------
# Shard roles (issue 11): shards 2..N of a tier, created by the functions
# --------------------------------------------------------------------------

# Every IAM action that would let a function give a role permissions (attach or
# put a policy, or edit a policy it could attach), hand a role to a service,
# delete or alter one, or loosen or drop its permissions boundary. Matched
# case-insensitively against every action granted, so a wildcard (iam:Put*) that
# would include one fails too.
ROLE_POWER_ACTIONS = [
    "iam:AttachRolePolicy",
    "iam:DetachRolePolicy",
    "iam:PutRolePolicy",
    "iam:DeleteRolePolicy",
    "iam:PutRolePermissionsBoundary",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PassRole",
    "iam:DeleteRole",
    "iam:UpdateRole",
    "iam:UpdateRoleDescription",
    "iam:TagRole",
    "iam:UntagRole",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:SetDefaultPolicyVersion",
    "iam:DeletePolicy",
    "iam:DeletePolicyVersion",
    "iam:CreateServiceLinkedRole",
    "iam:CreateInstanceProfile",
    "iam:AddRoleToInstanceProfile",
]

# Service Authorization Reference, "Actions, resources, and condition keys for AWS
# Identity and Access Management (IAM)": the condition keys each IAM action the
# functions take on roles supports (its own column; the role resource type adds
# only aws:ResourceTag and iam:ResourceTag, and shard roles carry no tags).
# iam:PermissionsBoundary is listed for CreateRole, not for GetRole or
# UpdateAssumeRolePolicy: there it would be absent and a condition on it never match.
ROLE_ACTION_CONDITION_KEYS = {
    "iam:CreateRole": {"iam:PermissionsBoundary", "aws:TagKeys", "aws:RequestTag/${TagKey}"},
    "iam:GetRole": set(),
    "iam:UpdateAssumeRolePolicy": set(),
    "iam:ListRoles": set(),
}

# IAM: a managed policy, whitespace excluded (not adjustable).
MANAGED_POLICY_MAX_CHARS = 6_144

TIER_ROLES_CASES = [NO_TIER_ROLES, TIER_ROLES]


def tier_cases():
    for tier_roles in TIER_ROLES_CASES:
        for conditions in all_condition_values(tier_roles):
            yield tier_roles, conditions


def test_shard_boundary_denies_everything():
    boundary = RESOURCES[BOUNDARY_ID]
    assert boundary["Type"] == "AWS::IAM::ManagedPolicy"
    props = boundary["Properties"]
    # Named after the stack, so an operator can tell it in the console.
    assert props["ManagedPolicyName"] == {"Fn::Sub": "${AWS::StackName}-shard-boundary"}
    assert "boundary" in props["Description"] and SHARD_PATH in props["Description"]
    # One statement: deny every action on every resource, unconditionally.
    for conditions in all_condition_values():
        document = resolve(props["PolicyDocument"], conditions)
        assert document == {
            "Version": "2012-10-17",
            "Statement": [{"Sid": "DenyEverything", "Effect": "Deny", "Action": "*", "Resource": "*"}],
        }
    # A boundary only: attached to nothing of the stack as a permissions policy.
    assert not {"Roles", "Users", "Groups"} & set(props)
    for logical_id, resource in RESOURCES.items():
        if resource["Type"] == "AWS::IAM::Role":
            assert {"Ref": BOUNDARY_ID} not in resource["Properties"].get("ManagedPolicyArns", []), logical_id


@pytest.mark.parametrize("tier_roles,conditions", list(tier_cases()))
def test_shard_roles_are_created_only_on_the_shard_path_with_the_boundary(tier_roles, conditions):
    creates = [s for s in tier_statements(conditions, tier_roles) if "iam:CreateRole" in as_list(s["Action"])]
    assert len(creates) == 1
    (create,) = creates
    assert as_list(create["Action"]) == ["iam:CreateRole"]
    assert as_list(create["Resource"]) == [SHARDS]
    # Exactly this condition: a role can be created only with the stack's boundary.
    assert create["Condition"] == {"StringEquals": {"iam:PermissionsBoundary": BOUNDARY}}
    # Ref of an AWS::IAM::ManagedPolicy is its ARN, the value IAM compares.
    assert RESOURCES[BOUNDARY_ID]["Type"] == "AWS::IAM::ManagedPolicy"


@pytest.mark.parametrize("tier_roles,conditions", list(tier_cases()))
def test_shard_trust_policies_are_read_and_written_only_on_the_shard_path(tier_roles, conditions):
    configured = with_tiers(ADMIN_ROLE, [n for n in tier_roles if n])
    on_roles = [
        s for s in tier_statements(conditions, tier_roles)
        if {"iam:GetRole", "iam:UpdateAssumeRolePolicy"} & set(as_list(s["Action"]))
    ]
    # Beyond the configured roles (shard 1 of each tier), the shard path and nothing else.
    resources = {r for s in on_roles for r in as_list(s["Resource"])}
    assert resources == configured | {SHARDS}
    # The shard path only in the shard statements: create, read, write the trust policy.
    for statement in tier_statements(conditions, tier_roles):
        if SHARDS in as_list(statement["Resource"]):
            assert as_list(statement["Resource"]) == [SHARDS], statement["Sid"]
            assert set(as_list(statement["Action"])) <= {"iam:CreateRole", "iam:GetRole", "iam:UpdateAssumeRolePolicy"}
    (shard_writes,) = [s for s in on_roles if as_list(s["Resource"]) == [SHARDS]]
    assert sorted(as_list(shard_writes["Action"])) == ["iam:GetRole", "iam:UpdateAssumeRolePolicy"]
    # Shard roles are found by listing (PathPrefix /eks-access-sync/): "*" is the only
    # resource ListRoles takes, and it is granted alone there.
    (lists,) = [s for s in tier_statements(conditions, tier_roles) if "iam:ListRoles" in as_list(s["Action"])]
    assert as_list(lists["Action"]) == ["iam:ListRoles"]
    assert as_list(lists["Resource"]) == ["*"]
    assert "Condition" not in lists


@pytest.mark.parametrize("function_id", FUNCTIONS)
@pytest.mark.parametrize("tier_roles", TIER_ROLES_CASES, ids=["single-tier", "tiers"])
def test_no_function_can_give_a_role_permissions_pass_delete_or_unbound_it(function_id, tier_roles):
    role = function_props(function_id)["Role"]["Fn::GetAtt"][0]
    for conditions in all_condition_values(tier_roles):
        for _, doc in policy_documents(RESOURCES[role], conditions):
            for statement in resolve(doc, conditions, tier_roles)["Statement"]:
                assert statement["Effect"] == "Allow" and "NotAction" not in statement, statement
                for action in as_list(statement["Action"]):
                    for forbidden in ROLE_POWER_ACTIONS:
                        assert not fnmatch.fnmatchcase(forbidden.lower(), action.lower()), (action, forbidden)


@pytest.mark.parametrize("tier_roles,conditions", list(tier_cases()))
def test_role_conditions_use_only_keys_their_actions_support(tier_roles, conditions):
    for statement in tier_statements(conditions, tier_roles):
        actions = set(as_list(statement["Action"])) & set(ROLE_ACTION_CONDITION_KEYS)
        if not actions:
            continue
        keys = {key for operator in statement.get("Condition", {}).values() for key in operator}
        for action in actions:
            assert keys <= ROLE_ACTION_CONDITION_KEYS[action], (statement["Sid"], action, keys)


def configured_roles(tier_roles):
    """R for each tier: the admin role, then the tier roles (as the ARNs name them)."""
    return ["${AdminRoleName}"] + [n for n in tier_roles if n]


@pytest.mark.parametrize("tier_roles,conditions", list(tier_cases()))
def test_shard_roles_access_entries_are_created_on_the_shard_path_only(tier_roles, conditions):
    names = [n for n in tier_roles if n]
    creates = [s for s in tier_statements(conditions, tier_roles) if "eks:CreateAccessEntry" in as_list(s["Action"])]
    principals = [p for s in creates for p in as_list(s["Condition"]["StringLike"]["eks:principalArn"])]
    # Each tier's role R: R itself (any path) and its shards R-<k>, on the shard path.
    for role in configured_roles(tier_roles):
        assert f"{P}:iam::${{AWS::AccountId}}:role{SHARD_PATH}{role}-*" in principals, role
    assert sorted(principals) == sorted(with_tiers(ADMIN_ROLE + [ADMIN_SHARDS], names))
    # Nothing broader: every pattern names one configured role, or its shards.
    allowed = {role: re.escape(role) for role in configured_roles(tier_roles)}
    shapes = "|".join(rf"{r}|\*/{r}|eks-access-sync/{r}-\*" for r in allowed.values())
    for principal in principals:
        assert principal.startswith(f"{P}:iam::${{AWS::AccountId}}:role/"), principal
        path_and_name = principal.split(":role/", 1)[1]
        assert path_and_name not in ("*", "*/*", "eks-access-sync/*"), principal
        assert re.fullmatch(shapes, path_and_name), principal
    # On the account's clusters, with the cluster tag condition as for R's own entry.
    for statement in creates:
        assert as_list(statement["Action"]) == ["eks:CreateAccessEntry"]
        assert as_list(statement["Resource"]) == [CLUSTERS]
        if conditions["ClusterTagIsDefault"]:
            assert statement["Condition"]["StringEquals"] == TAG_CONDITION["StringEquals"]
        else:
            assert set(statement["Condition"]) == {"StringLike"}


@pytest.mark.parametrize("tier_roles,conditions", list(tier_cases()))
def test_every_access_entry_action_reaches_each_tier_roles_shards_entries(tier_roles, conditions):
    names = [n for n in tier_roles if n]
    statements_ = list(tier_statements(conditions, tier_roles))
    for action in ENTRY_ACTIONS:
        on_action = [s for s in statements_ if action in as_list(s["Action"])]
        # ANY_ROLE_ENTRY: Describe and ListAssociatedAccessPolicies on any role (read only).
        entries = {r for s in on_action for r in as_list(s["Resource"]) if "/role/" in r} - {ANY_ROLE_ENTRY}
        for role in configured_roles(tier_roles):
            shard_entry = f"{P}:eks:*:${{AWS::AccountId}}:access-entry/*/role/${{AWS::AccountId}}/{role}-*/*"
            assert shard_entry in entries, (action, role)
        assert entries == with_tiers([ADMIN_ENTRY, ADMIN_SHARD_ENTRY], names), action
        # The role name is R or R-*: no wildcard account or name.
        for entry in entries:
            account, name = entry.split(":access-entry/*/role/", 1)[1].split("/", 1)
            assert account == "${AWS::AccountId}", entry
            assert name in {f"{r}{suffix}" for r in configured_roles(tier_roles) for suffix in ("/*", "-*/*")}, entry
        # The shards' policy changes are conditioned as R's own.
        if action in ("eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy"):
            assert len(on_action) == 2
            assert on_action[0]["Condition"] == on_action[1]["Condition"], action


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_functions_are_given_the_shard_boundary_arn(function_id):
    variables = function_props(function_id)["Environment"]["Variables"]
    # The same value the CreateRole condition requires.
    assert variables["SHARD_PERMISSIONS_BOUNDARY"] == {"Ref": BOUNDARY_ID}
    assert resolve(variables["SHARD_PERMISSIONS_BOUNDARY"], {}) == BOUNDARY


def test_shard_roles_policy_is_the_function_roles_and_fits_the_managed_policy_quota():
    policy = RESOURCES["ShardRolesPolicy"]
    assert policy["Type"] == "AWS::IAM::ManagedPolicy"
    # Attached by FunctionRole's ManagedPolicyArns only (the role waits for it).
    assert not {"Roles", "Users", "Groups"} & set(policy["Properties"])
    holders = [
        lid for lid, r in RESOURCES.items()
        if {"Ref": "ShardRolesPolicy"} in r.get("Properties", {}).get("ManagedPolicyArns", [])
    ]
    assert holders == ["FunctionRole"]
    # It names each tier role in four lists (the shards' access entries): measured as
    # the inline policies are, with nine tier roles (README "Limits").
    assert managed_policy_chars(NO_TIER_ROLES) < 2300
    assert managed_policy_chars(NINE_TIER_ROLES) <= MANAGED_POLICY_MAX_CHARS
    per_role = (managed_policy_chars(NINE_TIER_ROLES) - managed_policy_chars(NO_TIER_ROLES)) / 9
    assert 300 < per_role < 450, per_role


# IAM: a role's inline policies together, whitespace excluded (not adjustable).
ROLE_INLINE_POLICY_MAX_CHARS = 10_240
# Lambda: a function's environment variables together, names and values.
LAMBDA_ENVIRONMENT_MAX_BYTES = 4096
SAMPLE = {
    "${AWS::Partition}": "aws",
    "${AWS::AccountId}": "123456789012",
    "${AdminRoleName}": "eks-admin",
    "${aws:PrincipalAccount}": "${aws:PrincipalAccount}",
    BOUNDARY: "arn:aws:iam::123456789012:policy/eks-access-sync-shard-boundary",
}
# CloudFormation's physical name of the table: <stack>-TrustLockTable-<suffix>.
SAMPLE_TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/eks-access-sync-TrustLockTable-ABCDEFGHIJ12"


def policy_chars(docs, tier_roles):
    conditions = {name: True for name in CONDITION_NAMES} | {"IsChinaPartition": False}
    total = 0
    for doc in docs:
        text = json.dumps(resolve(doc, conditions, tier_roles), separators=(",", ":"))
        for name, value in SAMPLE.items():
            text = text.replace(name, value)
        total += len(re.sub(r"GetAtt:[A-Za-z]+\.Arn", SAMPLE_TABLE, text))
    return total


def inline_policy_chars(tier_roles):
    # The shard-role statements are in a managed policy, outside this quota.
    docs = [policy["PolicyDocument"] for policy in RESOURCES["FunctionRole"]["Properties"]["Policies"]]
    return policy_chars(docs, tier_roles)


def managed_policy_chars(tier_roles):
    return policy_chars([RESOURCES["ShardRolesPolicy"]["Properties"]["PolicyDocument"]], tier_roles)


# README "Limits": nine tier roles of about 11 characters fit.
NINE_TIER_ROLES = [f"eks-tier-{i:02d}" for i in range(9)]


def test_function_role_policies_fit_the_inline_quota_with_nine_tier_roles():
    # Each tier role adds about 620 characters (its name in seven lists); README
    # "Limits" gives the number of tier roles that fit.
    assert inline_policy_chars(NO_TIER_ROLES) < 4200
    assert inline_policy_chars(NINE_TIER_ROLES) <= ROLE_INLINE_POLICY_MAX_CHARS
    per_role = (inline_policy_chars(NINE_TIER_ROLES) - inline_policy_chars(NO_TIER_ROLES)) / 9
    assert 500 < per_role < 700, per_role


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_environment_fits_lambdas_limit_with_the_largest_access_config(function_id):
    variables = function_props(function_id)["Environment"]["Variables"]
    parameters = TEMPLATE["Parameters"]
    size = 0
    for name, value in variables.items():
        if name == "ACCESS_CONFIG":
            value = "x" * parameters["AccessConfig"]["MaxLength"]
        elif name == "TRUST_LOCK_TABLE":
            value = SAMPLE_TABLE.rsplit("/", 1)[1]
        elif name == "CLUSTER_REGIONS":
            value = "us-east-1"
        elif name == "SHARD_PERMISSIONS_BOUNDARY":
            # The longest policy ARN: a policy name holds at most 128 characters.
            value = "arn:aws-cn:iam::123456789012:policy/" + "x" * 128
        elif isinstance(value, str):
            pass
        else:
            value = str(parameters[value["Ref"]]["Default"])
        size += len(name) + len(value.encode())
    assert size <= LAMBDA_ENVIRONMENT_MAX_BYTES, size


def test_created_admin_role():
    role = RESOURCES["AdminRole"]
    assert role["Condition"] == "CreateAdminRoleCondition"
    props = role["Properties"]
    assert props["MaxSessionDuration"] == 3600
    assert props["RoleName"] == {"Ref": "AdminRoleName"}
    # The managed statement starts absent: nobody can assume the role before
    # the functions add tagged users.
    trust = props["AssumeRolePolicyDocument"]["Statement"]
    assert all(s["Effect"] == "Deny" for s in trust)
    assert all(s.get("Sid") != CORE_DEFAULTS["TrustStatementSid"] for s in trust)
    for conditions in all_condition_values():
        assert grants("AdminRole", conditions) == EXPECTED_ADMIN_ROLE_GRANTS


def test_function_role_is_assumable_by_lambda_only():
    trust = RESOURCES["FunctionRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert [s["Principal"] for s in trust] == [{"Service": "lambda.amazonaws.com"}]


def test_dead_letter_queue_accepts_only_this_stacks_rules():
    policy = RESOURCES["EventsDeadLetterQueuePolicy"]["Properties"]
    assert policy["Queues"] == [{"Ref": "EventsDeadLetterQueue"}]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    rules = sorted(lid for lid, r in RESOURCES.items() if r["Type"] == "AWS::Events::Rule")
    sources = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
    assert sorted(s["Fn::GetAtt"][0] for s in sources) == rules


# --------------------------------------------------------------------------
# Serialization, triggers and failure handling
# --------------------------------------------------------------------------


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_reserved_concurrency_is_one(function_id):
    assert function_props(function_id)["ReservedConcurrentExecutions"] == 1


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_both_functions_share_the_trust_policy_lease(function_id):
    # Reserved concurrency serializes each function with itself only; the lease in
    # one table, named to both, serializes them against each other.
    variables = function_props(function_id)["Environment"]["Variables"]
    assert variables["TRUST_LOCK_TABLE"] == {"Ref": "TrustLockTable"}


def test_trust_lock_table():
    table = RESOURCES["TrustLockTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    props = table["Properties"]
    assert props["BillingMode"] == "PAY_PER_REQUEST"
    assert props["KeySchema"] == [{"AttributeName": "lockId", "KeyType": "HASH"}]
    assert props["AttributeDefinitions"] == [{"AttributeName": "lockId", "AttributeType": "S"}]
    assert props["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    # Encrypted at rest with the default (AWS owned) key.
    assert "SSESpecification" not in props


@pytest.mark.parametrize("conditions", list(all_condition_values()), ids=lambda c: str(sorted(k for k, v in c.items() if v)))
def test_lease_writes_are_limited_to_the_admin_roles_lock_item(conditions):
    (statement,) = [s for s in statements("FunctionRole", conditions) if s["Resource"] == LOCK_TABLE]
    assert sorted(as_list(statement["Action"])) == ["dynamodb:DeleteItem", "dynamodb:PutItem"]
    assert statement["Condition"] == {
        "ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["trust-policy/${AdminRoleName}"]}
    }


def test_iam_rule_matches_exactly_the_successful_user_and_group_calls():
    pattern = RESOURCES["IamEventsRule"]["Properties"]["EventPattern"]
    assert pattern == {
        "source": ["aws.iam"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["iam.amazonaws.com"],
            "eventName": [
                "CreateUser",
                "TagUser",
                "UntagUser",
                "DeleteUser",
                "AddUserToGroup",
                "RemoveUserFromGroup",
                "DeleteGroup",
            ],
            "errorCode": [{"exists": False}],
        },
    }
    targets = list(rules_targeting("IamEventsFunction"))
    assert [lid for lid, _, _ in targets] == ["IamEventsRule"]


def test_reconcile_runs_on_schedule_and_on_eks_cluster_events():
    rules = {lid: props for lid, props, _ in rules_targeting("ReconcileFunction")}
    assert set(rules) == {"EksEventsRule", "ReconcileScheduleRule"}
    assert rules["ReconcileScheduleRule"]["ScheduleExpression"] == {"Ref": "ReconcileSchedule"}
    assert rules["EksEventsRule"]["EventPattern"] == {
        "source": ["aws.eks"],
        "detail-type": ["AWS API Call via CloudTrail"],
        "detail": {
            "eventSource": ["eks.amazonaws.com"],
            "eventName": ["CreateCluster", "TagResource"],
            "errorCode": [{"exists": False}],
        },
    }


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_every_rule_target_has_a_dead_letter_queue_and_retry_policy(function_id):
    targets = list(rules_targeting(function_id))
    assert targets
    for rule_id, _, target in targets:
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["EventsDeadLetterQueue", "Arn"]}}, rule_id
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] <= 86400
        permission = [
            r["Properties"]
            for r in RESOURCES.values()
            if r["Type"] == "AWS::Lambda::Permission"
            and r["Properties"]["SourceArn"] == {"Fn::GetAtt": [rule_id, "Arn"]}
        ]
        assert permission == [{
            "Action": "lambda:InvokeFunction",
            "FunctionName": {"Ref": function_id},
            "Principal": "events.amazonaws.com",
            "SourceArn": {"Fn::GetAtt": [rule_id, "Arn"]},
        }]


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_async_failures_go_to_the_failure_queue(function_id):
    config = function_props(function_id)["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"] == {
        "Type": "SQS",
        "Destination": {"Fn::GetAtt": ["FailureQueue", "Arn"]},
    }
    assert config["MaximumRetryAttempts"] <= 2


@pytest.mark.parametrize("queue", ["EventsDeadLetterQueue", "FailureQueue"])
def test_queue_has_a_visible_messages_alarm(queue):
    assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue"
    alarms = [
        r["Properties"]
        for r in RESOURCES.values()
        if r["Type"] == "AWS::CloudWatch::Alarm"
        and r["Properties"]["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": [queue, "QueueName"]}}]
    ]
    assert len(alarms) == 1
    alarm = alarms[0]
    assert alarm["Namespace"] == "AWS/SQS"
    assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["Threshold"] == 0


# --------------------------------------------------------------------------
# Build, runtime and configuration
# --------------------------------------------------------------------------


@pytest.mark.parametrize("function_id,binary", FUNCTIONS.items())
def test_function_builds_its_binary_with_cargo_lambda(function_id, binary):
    resource = RESOURCES[function_id]
    assert resource["Type"] == "AWS::Serverless::Function"
    assert resource["Metadata"] == {"BuildMethod": "rust-cargolambda", "BuildProperties": {"Binary": binary}}
    props = function_props(function_id)
    crate = (TEMPLATE_PATH.parent / props["CodeUri"]).resolve()
    manifest = tomllib.loads((crate / "Cargo.toml").read_text())
    assert binary in [b["name"] for b in manifest.get("bin", [])], f"{crate} has no [[bin]] {binary}"
    assert props["Runtime"] == "provided.al2023"
    assert props["Handler"] == "bootstrap"
    assert props["Architectures"] == ["arm64"]
    assert props["LoggingConfig"]["LogFormat"] == "JSON"


@pytest.mark.parametrize("function_id", FUNCTIONS)
def test_every_configuration_setting_reaches_the_function(function_id):
    variables = function_props(function_id)["Environment"]["Variables"]
    # TRUST_LOCK_TABLE names the stack's own table, SHARD_PERMISSIONS_BOUNDARY its own
    # boundary policy, not parameters (both checked on their own).
    assert set(variables) == set(CONFIG_ENV) | {
        "TRUST_LOCK_TABLE", "ACCESS_EVENT_BUS", "SHARD_PERMISSIONS_BOUNDARY", "MEMBER_ROLE_NAME"
    }
    # Access events go to the default bus, the only one the role may put on.
    assert variables["ACCESS_EVENT_BUS"] == "default"
    # The member role the functions assume is the one MemberAccountsPolicy allows.
    assert variables["MEMBER_ROLE_NAME"] == {"Ref": "MemberRoleName"}
    for env, parameter in CONFIG_ENV.items():
        value = variables[env]
        if env == "CLUSTER_REGIONS":
            assert value == {"Fn::If": ["HasClusterRegions", {"Ref": parameter}, {"Ref": "AWS::Region"}]}
        else:
            assert value == {"Ref": parameter}, env


def test_parameter_defaults_are_the_core_defaults():
    parameters = TEMPLATE["Parameters"]
    for name, default in CORE_DEFAULTS.items():
        assert str(parameters[name]["Default"]) == str(default), name
    assert parameters["ClusterRegions"]["Default"] == ""
    assert parameters["ReconcileSchedule"]["Default"].startswith("rate(")


def test_description_says_where_iam_events_arrive():
    description = TEMPLATE["Description"]
    assert "us-east-1" in description
    assert "CloudTrail" in description
    assertion = TEMPLATE["Rules"]["IamEventsRegion"]["Assertions"][0]["Assert"]
    assert assertion == {"Fn::Contains": [["us-east-1", "cn-north-1"], {"Ref": "AWS::Region"}]}


def test_outputs():
    outputs = TEMPLATE["Outputs"]
    for name in (
        "IamEventsFunctionName",
        "ReconcileFunctionName",
        "FunctionRoleArn",
        "AdminRoleArn",
        "EventsDeadLetterQueueUrl",
        "FailureQueueUrl",
    ):
        assert name in outputs, name
    assert outputs["FunctionRoleArn"]["Value"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}


# --------------------------------------------------------------------------
# Dashboard
# --------------------------------------------------------------------------

# What the functions emit (written and kept up to date by the Rust test
# telemetry::tests::emf_metrics_json_is_up_to_date).
EMF = json.loads((ROOT / "tests" / "infra" / "emf_metrics.json").read_text())
CUSTOM_NAMESPACE = EMF["namespace"]
EMITTED = {m["Name"]: m["Unit"] for m in EMF["metrics"]}
SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


def placeholder(name):
    return f"<<{name}>>"


def dashboard_body():
    """The dashboard body as JSON, each ${X} of its Fn::Sub replaced by <<X>>,
    and the names substituted."""
    sub = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(sub, str), "DashboardBody is a plain !Sub string"
    names = SUB_VARIABLE.findall(sub)
    body = json.loads(SUB_VARIABLE.sub(lambda m: placeholder(m.group(1)), sub))
    return body, set(names)


def metric_rows(widget):
    """Each metric row of a widget as (namespace, name, {dimension: value}, options),
    with the "." shorthand (same as the row above) expanded."""
    previous: list = []
    for row in widget["properties"].get("metrics", []):
        options = row[-1] if row and isinstance(row[-1], dict) else {}
        fields = [f for f in row if not isinstance(f, dict)]
        assert fields, f"metric math is not used here: {row}"
        fields = [previous[i] if f == "." else f for i, f in enumerate(fields)]
        previous = fields
        namespace, name, *dims = fields
        assert len(dims) % 2 == 0, row
        yield namespace, name, dict(zip(dims[::2], dims[1::2])), options


def all_metric_rows():
    body, _ = dashboard_body()
    for widget in body["widgets"]:
        if widget["type"] == "metric":
            yield from ((widget, *row) for row in metric_rows(widget))


def test_dashboard_body_substitutes_only_this_stacks_names():
    _, names = dashboard_body()
    assert "AWS::Region" in names
    for name in names - {"AWS::Region"}:
        resource = name.split(".")[0]
        assert resource in RESOURCES, f"${{{name}}} names no resource of the stack"
    body, _ = dashboard_body()
    for widget in body["widgets"]:
        assert widget["properties"]["region"] == placeholder("AWS::Region"), widget


def test_every_custom_metric_on_the_dashboard_is_emitted_by_the_code():
    rows = [r for r in all_metric_rows() if r[1] == CUSTOM_NAMESPACE]
    assert rows, "the dashboard shows the functions' own metrics"
    dimension_sets = [sorted(d) for d in EMF["dimensions"]]
    for widget, _, name, dims, _ in rows:
        title = widget["properties"]["title"]
        assert name in EMITTED, f"{title}: {name} is not emitted (emf_metrics.json)"
        assert sorted(dims) in dimension_sets, f"{title}: {name} dimensions {dims}"
        assert dims["Function"] in EMF["functions"], f"{title}: {name} {dims}"


def test_only_the_functions_lambdas_and_queues_metrics_are_shown():
    namespaces = {r[1] for r in all_metric_rows()}
    assert namespaces == {CUSTOM_NAMESPACE, "AWS/Lambda", "AWS/SQS"}


def test_lambda_widgets_show_errors_and_throttles_of_both_functions():
    shown = set()
    for _, namespace, name, dims, _ in all_metric_rows():
        if namespace != "AWS/Lambda":
            continue
        assert set(dims) == {"FunctionName"}, dims
        function = dims["FunctionName"].strip("<>")
        assert RESOURCES[function]["Type"] == "AWS::Serverless::Function", function
        shown.add((name, function))
    assert shown == {(m, f) for m in ("Errors", "Throttles") for f in FUNCTIONS}


def test_queue_widget_shows_both_queues():
    shown = set()
    for _, namespace, name, dims, _ in all_metric_rows():
        if namespace != "AWS/SQS":
            continue
        assert name == "ApproximateNumberOfMessagesVisible"
        assert set(dims) == {"QueueName"}, dims
        queue, attribute = dims["QueueName"].strip("<>").split(".")
        assert attribute == "QueueName"
        assert RESOURCES[queue]["Type"] == "AWS::SQS::Queue", queue
        shown.add(queue)
    assert shown == {"EventsDeadLetterQueue", "FailureQueue"}


def widget_with(metric):
    body, _ = dashboard_body()
    found = [
        w
        for w in body["widgets"]
        if any(r[1] == metric for r in metric_rows(w) if w["type"] == "metric")
    ]
    assert len(found) == 1, f"one widget shows {metric}"
    return found[0]


def shown_in(widget):
    return {name for _, name, _, _ in metric_rows(widget)}


def test_dashboard_widgets():
    # Grants and revocations over time.
    assert {"UsersAdded", "UsersRemoved"} <= shown_in(widget_with("UsersAdded"))
    # Clusters by status per run.
    clusters = widget_with("ClustersUpdated")
    assert {"ClustersUpdated", "ClustersUnchanged", "ClustersSkipped", "ClustersFailed"} <= shown_in(clusters)
    # Run duration, in the unit the code emits.
    assert EMITTED["RunDurationMs"] == "Milliseconds"
    assert widget_with("RunDurationMs")
    # Each role's trust-policy size against its quota, with a line at 80 %.
    trust = widget_with("TrustPolicySizeChars")
    assert {"TrustPolicySizeChars", "TrustPolicyMaxChars", "TrustPolicyUsage"} <= shown_in(trust)
    usage_axes = {o.get("yAxis", "left") for _, n, _, o in metric_rows(trust) if n == "TrustPolicyUsage"}
    assert usage_axes == {"right"}
    assert EMITTED["TrustPolicyUsage"] == "Percent"
    lines = trust["properties"]["annotations"]["horizontal"]
    assert [(a["value"], a.get("yAxis", "left")) for a in lines] == [(80, "right")]


def test_dashboard_url_output():
    out = TEMPLATE["Outputs"]["DashboardUrl"]["Value"]
    for conditions in all_condition_values():
        url = resolve(out, conditions)
        assert url.startswith("https://"), url
        assert "${Dashboard}" in url and "region=${AWS::Region}" in url, url
    assert TEMPLATE["Resources"]["Dashboard"]["Properties"]["DashboardName"] == {
        "Fn::Sub": "${AWS::StackName}-${AWS::Region}"
    }
