#!/usr/bin/env bash
# The eks-access-sync story on the local sandbox; run by `make demo`, which
# builds the binaries, starts and seeds the sandbox, and stops it afterwards.
#
# Act 1 (one tier, the environment variables): a user is created with the admin
# tag, the event is handled exactly as the iam-events Lambda would, the user
# assumes the admin role and kubectl shows them as cluster-admin; the user is
# deleted, the DeleteUser event is handled, and the same steps are refused.
#
# Act 2 (three tiers, examples/access.yaml, on prod, a CONFIG_MAP cluster, and an
# API cluster): a reader (tag) can get pods but not create them; a developer (IAM
# group) can write in team-a but not in kube-system; RemoveUserFromGroup, handled
# as its event, takes the developer's role away.
#
# Act 3 (every cluster in the organization, issue 12): two member accounts with the
# member stack (the sandbox's seed-member); the engine runs as the hub's function
# role with act 2's tiers and an `accounts:` list, assumes each member role once and
# maps the hub's tier roles on the members' tagged clusters. A hub user tagged admin
# assumes eks-admin and reaches m1-prod (account 111111111111) and m2-api
# (222222222222) with kubectl, not m1-api (not env=prod) nor m1-untagged; DeleteUser,
# handled as its event, takes eks-admin and so every member cluster away.
#
# Needs: BIN_DIR (eks-access-sync, eks-sandbox), SANDBOX_DIR (.sandbox, with
# the env file `eks-sandbox up` writes and `eks-sandbox seed` adds
# TRUST_LOCK_TABLE to), aws (awscli v1), kubectl and python3 on PATH.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN_DIR=${BIN_DIR:-$ROOT/target/debug}
SANDBOX_DIR=${SANDBOX_DIR:-$ROOT/.sandbox}
DEMO_USER=${DEMO_USER:-dave}
CLUSTER=${DEMO_CLUSTER:-prod}
CLI="$BIN_DIR/eks-access-sync"

# shellcheck disable=SC1091
source "$SANDBOX_DIR/env"
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-$AWS_REGION}
export ADMIN_ROLE_NAME=${ADMIN_ROLE_NAME:-eks-admin}
export AWS_PAGER=""

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
export KUBECONFIG="$WORK/kubeconfig"

bold=$'\e[1m' dim=$'\e[2m' green=$'\e[32m' red=$'\e[31m' reset=$'\e[0m'
[ -t 1 ] || { bold='' dim='' green='' red='' reset=''; }
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$reset"; }
run() { printf '%s$ %s%s\n' "$dim" "$*" "$reset"; "$@"; }
ok() { printf '%s✔ %s%s\n' "$green" "$*" "$reset"; }
refused() { printf '%s✘ %s%s\n' "$red" "$*" "$reset"; }
die() { printf '%sdemo failed: %s%s\n' "$red" "$*" "$reset" >&2; exit 1; }

# The sample event with the demo user's name in place of "dave".
event() { sed -e "s/\\bdave\\b/$DEMO_USER/g" "$ROOT/events/$1"; }

trust_principals() {
  aws iam get-role --role-name "$ADMIN_ROLE_NAME" \
    --query 'Role.AssumeRolePolicyDocument.Statement[].Principal' --output json
}

# Run a command as the demo user (their own access key, no operator session).
as_user() {
  env -u AWS_SESSION_TOKEN -u AWS_PROFILE \
    AWS_ACCESS_KEY_ID="$USER_KEY_ID" AWS_SECRET_ACCESS_KEY="$USER_SECRET" "$@"
}

ROLE_ARN=$(aws iam get-role --role-name "$ADMIN_ROLE_NAME" --query Role.Arn --output text)

if [ -n "${TRUST_LOCK_TABLE:-}" ]; then
  printf '%s(trust-policy writes take the lease in DynamoDB table %s, as deployed: TRUST_LOCK_TABLE)%s\n' \
    "$dim" "$TRUST_LOCK_TABLE" "$reset"
fi

step "1. The seeded world: what would change? (plan, a dry run)"
run "$CLI" plan

step "2. Bring it in step (reconcile) and read the report"
run "$CLI" reconcile
run "$CLI" plan --exit-code || die "changes still pending after reconcile"
ok "nothing pending"

step "3. A new engineer, $DEMO_USER, is created with the admin tag"
run aws iam create-user --user-name "$DEMO_USER" --tags Key=eks-access,Value=admin --output text \
  --query User.Arn
read -r USER_KEY_ID USER_SECRET < <(aws iam create-access-key --user-name "$DEMO_USER" \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
printf '%s(access key %s… created for %s)%s\n' "$dim" "${USER_KEY_ID:0:8}" "$DEMO_USER" "$reset"

step "4. CloudTrail's CreateUser event, handled as the iam-events Lambda would"
event iam-create-user-tagged.json > "$WORK/create-user.json"
run "$CLI" handle-event "$WORK/create-user.json"
run trust_principals

step "5. $DEMO_USER assumes the admin role"
run as_user aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name "$DEMO_USER" \
  --query 'AssumedRoleUser.Arn' --output text || die "$DEMO_USER could not assume the role"
ok "$DEMO_USER may assume $ADMIN_ROLE_NAME"

step "6. $DEMO_USER writes a kubeconfig for $CLUSTER and asks the cluster who they are"
# --assume-role-arn: DescribeCluster as the role; --role-arn: every kubectl call assumes it.
run as_user aws eks update-kubeconfig --name "$CLUSTER" --alias "$CLUSTER" \
  --assume-role-arn "$ROLE_ARN" --role-arn "$ROLE_ARN"
run as_user kubectl auth whoami || die "the cluster refused $DEMO_USER"
ok "$DEMO_USER is cluster-admin on $CLUSTER"
run as_user kubectl get configmap aws-auth -n kube-system -o jsonpath='{.data.mapRoles}'
echo

step "7. $DEMO_USER leaves: their key and user are deleted"
run aws iam delete-access-key --user-name "$DEMO_USER" --access-key-id "$USER_KEY_ID"
run aws iam delete-user --user-name "$DEMO_USER"

step "8. CloudTrail's DeleteUser event, handled as the iam-events Lambda would"
event iam-delete-user.json > "$WORK/delete-user.json"
run "$CLI" handle-event "$WORK/delete-user.json"
run trust_principals

step "9. The same steps are now refused"
if as_user aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name "$DEMO_USER" \
  --output text --query AssumedRoleUser.Arn 2>"$WORK/assume.err"; then
  die "$DEMO_USER could still assume the role"
fi
refused "assume-role: $(tail -n 1 "$WORK/assume.err")"
if as_user kubectl auth whoami 2>"$WORK/whoami.err"; then
  die "the cluster still answered $DEMO_USER"
fi
refused "kubectl auth whoami: $(tail -n 1 "$WORK/whoami.err")"
# Their old key died with the user; the trust policy no longer names them either:
# someone re-created under the same name (without the tag) is refused by the role.
run aws iam create-user --user-name "$DEMO_USER" --output text --query User.Arn
read -r USER_KEY_ID USER_SECRET < <(aws iam create-access-key --user-name "$DEMO_USER" \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
if as_user aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name "$DEMO_USER" \
  --output text --query AssumedRoleUser.Arn 2>"$WORK/assume2.err"; then
  die "a re-created $DEMO_USER could assume the role"
fi
refused "assume-role as a re-created $DEMO_USER: $(tail -n 1 "$WORK/assume2.err")"
printf '%s(a session assumed before the removal lasts until it expires: the admin role keeps MaxSessionDuration at 1 h)%s\n' \
  "$dim" "$reset"

step "10. Nothing left to do"
run "$CLI" plan --exit-code || die "changes pending after the DeleteUser event"
ok "trust policy and clusters in step"
run "$CLI" plan --output json

# ------------------------------------------------------------- act 2 ----
CONFIG="$ROOT/examples/access.yaml"
API_CLUSTER=${DEMO_API_CLUSTER:-apionly}
ACCOUNT=$(aws sts get-caller-identity --query Account --output text)
role_arn() { printf 'arn:aws:iam::%s:role/%s' "$ACCOUNT" "$1"; }

# Run a command as a user, given their key id and secret.
as() { local id=$1 secret=$2; shift 2
  env -u AWS_SESSION_TOKEN -u AWS_PROFILE AWS_ACCESS_KEY_ID="$id" AWS_SECRET_ACCESS_KEY="$secret" "$@"; }

# A user's kubeconfig for both clusters, every kubectl call assuming `role`.
kubeconfig_for() { local who=$1 id=$2 secret=$3 role; role=$(role_arn "$4")
  for c in "$CLUSTER" "$API_CLUSTER"; do
    KUBECONFIG="$WORK/$who.kubeconfig" as "$id" "$secret" aws eks update-kubeconfig --name "$c" \
      --alias "$c" --assume-role-arn "$role" --role-arn "$role" >/dev/null
  done
  printf '%s(%s: kubeconfig for %s and %s, assuming %s)%s\n' "$dim" "$who" "$CLUSTER" "$API_CLUSTER" "$4" "$reset"
}

# expect WHO ID SECRET yes|no CONTEXT can-i ARGS…: kubectl auth can-i, as the user.
expect() { local who=$1 id=$2 secret=$3 want=$4 ctx=$5; shift 5
  local got
  got=$(KUBECONFIG="$WORK/$who.kubeconfig" as "$id" "$secret" kubectl --context "$ctx" auth can-i "$@" 2>&1) || true
  if [ "$got" = "$want" ]; then
    if [ "$want" = yes ]; then ok "$who on $ctx: can-i $* -> yes"; else refused "$who on $ctx: can-i $* -> no"; fi
  else
    die "$who on $ctx: can-i $*: expected $want, got: $got"
  fi
}

step "11. Act 2: three tiers, one file (admin: tag on env=prod clusters; developers: IAM groups, team-a and team-b-*; readers: tag or group)"
run "$CLI" config check "$CONFIG"
BREAK_GLASS='{"Version":"2012-10-17","Statement":[{"Sid":"BreakGlass","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::'"$ACCOUNT"':root"},"Action":"sts:AssumeRole","Condition":{"Bool":{"aws:MultiFactorAuthPresent":"true"}}}]}'
for r in eks-edit eks-view; do
  run aws iam create-role --role-name "$r" --assume-role-policy-document "$BREAK_GLASS" --query Role.Arn --output text
done
run aws iam create-group --group-name developers --query Group.Arn --output text
run aws eks create-cluster --name "$API_CLUSTER" --role-arn "$(role_arn eks-cluster-role)" \
  --resources-vpc-config subnetIds=subnet-1 --access-config authenticationMode=API \
  --tags eks-access-sync/managed=true,env=prod --query 'cluster.[name,accessConfig.authenticationMode]' --output text
run aws eks tag-resource --resource-arn "$(aws eks describe-cluster --name "$CLUSTER" --query cluster.arn --output text)" \
  --tags env=prod

step "12. Two engineers: rita (tag eks-access=view) and dan (group developers)"
run aws iam create-user --user-name rita --tags Key=eks-access,Value=view --query User.Arn --output text
read -r RITA_ID RITA_SECRET < <(aws iam create-access-key --user-name rita \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
run aws iam create-user --user-name dan --query User.Arn --output text
run aws iam add-user-to-group --user-name dan --group-name developers
read -r DAN_ID DAN_SECRET < <(aws iam create-access-key --user-name dan \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)

step "13. Reconcile with the file: each tier role trusts its members; each cluster maps every tier role"
run "$CLI" --config "$CONFIG" reconcile

step "14. rita, a reader, can get pods but not create them, on both clusters"
kubeconfig_for rita "$RITA_ID" "$RITA_SECRET" eks-view
for c in "$CLUSTER" "$API_CLUSTER"; do
  expect rita "$RITA_ID" "$RITA_SECRET" yes "$c" get pods
  expect rita "$RITA_ID" "$RITA_SECRET" no "$c" create pods
done

step "15. dan, a developer, can write in team-a but not in kube-system, on both clusters"
kubeconfig_for dan "$DAN_ID" "$DAN_SECRET" eks-edit
for c in "$CLUSTER" "$API_CLUSTER"; do
  expect dan "$DAN_ID" "$DAN_SECRET" yes "$c" create deployments -n team-a
  expect dan "$DAN_ID" "$DAN_SECRET" no "$c" create deployments -n kube-system
done

step "16. dan leaves the developers group; CloudTrail's RemoveUserFromGroup event is handled"
run aws iam remove-user-from-group --user-name dan --group-name developers
sed -e 's/\bdave\b/dan/g' "$ROOT/events/iam-remove-user-from-group.json" > "$WORK/remove-from-group.json"
run "$CLI" --config "$CONFIG" handle-event "$WORK/remove-from-group.json"
if as "$DAN_ID" "$DAN_SECRET" aws sts assume-role --role-arn "$(role_arn eks-edit)" --role-session-name dan \
  --output text --query AssumedRoleUser.Arn 2>"$WORK/dan.err"; then
  die "dan could still assume eks-edit"
fi
refused "dan: assume-role eks-edit: $(tail -n 1 "$WORK/dan.err")"
if KUBECONFIG="$WORK/dan.kubeconfig" as "$DAN_ID" "$DAN_SECRET" kubectl --context "$CLUSTER" \
  auth can-i create deployments -n team-a 2>"$WORK/dan-kubectl.err"; then
  die "dan could still reach $CLUSTER"
fi
refused "dan: kubectl on $CLUSTER (aws eks get-token assumes eks-edit): $(grep -m1 -o 'An error occurred (AccessDenied)[^:]*' \
  "$WORK/dan-kubectl.err" || tail -n 1 "$WORK/dan-kubectl.err")"

step "17. Nothing left to do"
run "$CLI" --config "$CONFIG" plan --exit-code || die "changes pending after the tiers' act"
ok "three tiers' trust policies, aws-auth, bindings and access entries in step"

# ------------------------------------------------------------- act 3 ----
M1=111111111111 M2=222222222222
FUNCTION_ROLE_ARN=$(role_arn eks-access-sync-function)
CONFIG3="$WORK/access-accounts.yaml"
declare -A MEMBER_ID MEMBER_SECRET

# Run a command with a session's credentials (key id, secret, session token).
as_session() { local id=$1 secret=$2 token=$3; shift 3
  env -u AWS_PROFILE AWS_ACCESS_KEY_ID="$id" AWS_SECRET_ACCESS_KEY="$secret" AWS_SESSION_TOKEN="$token" "$@"; }
# Run a command as the hub's function role (the session assumed in step 21), as the functions run.
as_function() { as_session "$FN_ID" "$FN_SECRET" "$FN_TOKEN" "$@"; }
# Run a command as a member account's administrator.
as_member() { local account=$1; shift
  as "${MEMBER_ID[$account]}" "${MEMBER_SECRET[$account]}" "$@"; }

# The sandbox's stand-in for a member account with the member stack (infra/member.yaml)
# deployed: POST /_sandbox/seed-member; keeps the account administrator's key.
seed_member() { local account=$1 prefix=$2 summary
  summary=$(python3 - "$AWS_ENDPOINT_URL_EKS/_sandbox/seed-member" "$account" "$prefix" <<'PY'
import json, sys, urllib.request
url, account, prefix = sys.argv[1:]
body = json.dumps({"accountId": account, "clusterPrefix": prefix}).encode()
req = urllib.request.Request(url, body, {"content-type": "application/json"}, method="POST")
d = json.load(urllib.request.urlopen(req, timeout=30))
print(d["admin"]["accessKeyId"], d["admin"]["secretAccessKey"])
print("member role %s trusts %s (inside %s); managed clusters %s; untagged %s" % (d["memberRoleArn"],
      d["hubFunctionRoleArn"], d["organizationId"], ", ".join(d["managedClusters"]),
      ", ".join(d["unmanagedClusters"])))
PY
) || die "the sandbox did not seed member account $account"
  read -r "MEMBER_ID[$account]" "MEMBER_SECRET[$account]" <<<"$(head -n 1 <<<"$summary")"
  printf '%s(account %s: %s)%s\n' "$dim" "$account" "$(tail -n 1 <<<"$summary")" "$reset"
}

step "18. Act 3: every cluster in the organization. Two member accounts, each with the member stack (role eks-access-sync-member, trusting only the hub's function role)"
seed_member "$M1" m1
seed_member "$M2" m2
run as_member "$M1" aws eks list-clusters --query clusters --output text
run as_member "$M2" aws eks list-clusters --query clusters --output text

step "19. The members' administrators tag one cluster each env=prod: the admin tier's clusters are env=prod in every account"
run as_member "$M1" aws eks tag-resource --tags env=prod \
  --resource-arn "$(as_member "$M1" aws eks describe-cluster --name m1-prod --query cluster.arn --output text)"
run as_member "$M2" aws eks tag-resource --tags env=prod \
  --resource-arn "$(as_member "$M2" aws eks describe-cluster --name m2-api --query cluster.arn --output text)"

step "20. A new engineer in the hub account, erin, is created with the admin tag"
run aws iam create-user --user-name erin --tags Key=eks-access,Value=admin --query User.Arn --output text
ERIN_UID=$(aws iam get-user --user-name erin --query User.UserId --output text)
read -r ERIN_ID ERIN_SECRET < <(aws iam create-access-key --user-name erin \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)

step "21. The engine runs as the hub's function role, the one principal the member roles trust"
# The hub's clusters give the function role its access once, as `make bootstrap` does.
for c in "$CLUSTER" staging "$API_CLUSTER"; do
  # (its command and its last line: the function role's mapping or access entry)
  run "$CLI" bootstrap --cluster "$c" --region "$AWS_REGION" --role-arn "$FUNCTION_ROLE_ARN" | sed -n '1p;$p' \
    || die "bootstrap of $c for the function role failed"
done
run aws sts assume-role --role-arn "$FUNCTION_ROLE_ARN" --role-session-name eks-access-sync \
  --query AssumedRoleUser.Arn --output text || die "the operator could not assume the function role"
read -r FN_ID FN_SECRET FN_TOKEN < <(aws sts assume-role --role-arn "$FUNCTION_ROLE_ARN" \
  --role-session-name eks-access-sync --query 'Credentials.[AccessKeyId,SecretAccessKey,SessionToken]' --output text)
# The tiers of act 2, and the member accounts.
{ cat "$CONFIG"; printf 'accounts:\n  - id: "%s"\n  - id: "%s"\n' "$M1" "$M2"; } >"$CONFIG3"
run "$CLI" config check "$CONFIG3"
run as_function "$CLI" --config "$CONFIG3" plan 2>/dev/null | tee "$WORK/plan3.txt" || die "the plan failed"
for a in "$M1" "$M2"; do
  grep -q "^== Account $a ==" "$WORK/plan3.txt" || die "the plan has no heading for account $a"
done
grep -q 'erin' "$WORK/plan3.txt" || die "the plan does not add erin to eks-admin's trust policy"
ok "the plan covers the hub and both member accounts, account by account"

step "22. Reconcile: one AssumeRole per member account; every tagged cluster maps the hub's tier roles"
run as_function "$CLI" --config "$CONFIG3" reconcile 2>"$WORK/reconcile3.log" | tee "$WORK/reconcile3.txt" \
  || die "the reconcile failed: $(cat "$WORK/reconcile3.log")"
for a in "$M1" "$M2"; do
  [ "$(grep '"member role assumed"' "$WORK/reconcile3.log" | grep -c "\"account\":\"$a\"")" = 1 ] \
    || die "not exactly one AssumeRole of account $a's member role: $(cat "$WORK/reconcile3.log")"
done
printf '%s(its log: "member role assumed" once for %s, once for %s)%s\n' "$dim" "$M1" "$M2" "$reset"
for ac in "$M1/m1-prod" "$M1/m1-api" "$M2/m2-prod" "$M2/m2-api"; do
  grep -Eq "^cluster ${ac%%/*}/$AWS_REGION/${ac#*/}: (created|updated)" "$WORK/reconcile3.txt" \
    || die "the report does not show ${ac#*/} of account ${ac%%/*} created or updated"
done
if grep -q -- '-untagged' "$WORK/reconcile3.txt"; then die "an untagged member cluster was reconciled"; fi
ok "m1-prod, m1-api (account $M1), m2-prod, m2-api (account $M2) reconciled; m1-untagged, m2-untagged left alone"
run as_function "$CLI" --config "$CONFIG3" plan --exit-code >/dev/null 2>&1 \
  || die "changes still pending after the reconcile"
ok "nothing pending, in any account"

step "23. erin, in the hub, assumes eks-admin with her own key and reaches a cluster in each member account"
as_erin() { KUBECONFIG="$WORK/erin.kubeconfig" as "$ERIN_ID" "$ERIN_SECRET" "$@"; }
run as_erin aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name erin \
  --query AssumedRoleUser.Arn --output text || die "erin could not assume $ADMIN_ROLE_NAME"
# Endpoint and CA come from each member's administrator (erin may not describe another
# account's clusters); every kubectl call runs `aws eks get-token --role-arn eks-admin` as erin.
for ac in "$M1/m1-prod" "$M1/m1-api" "$M1/m1-untagged" "$M2/m2-api"; do
  KUBECONFIG="$WORK/erin.kubeconfig" as_member "${ac%%/*}" aws eks update-kubeconfig --name "${ac#*/}" \
    --alias "${ac#*/}" --role-arn "$ROLE_ARN" >/dev/null
done
printf '%s(erin: kubeconfig for m1-prod, m1-api, m1-untagged (account %s) and m2-api (account %s), assuming %s)%s\n' \
  "$dim" "$M1" "$M2" "$ADMIN_ROLE_NAME" "$reset"
for c in m1-prod m2-api; do
  run as_erin kubectl --context "$c" auth whoami | tee "$WORK/whoami-$c.txt" || die "$c refused erin"
  grep -q "assumed-role/$ADMIN_ROLE_NAME/" "$WORK/whoami-$c.txt" || die "$c did not see erin as $ADMIN_ROLE_NAME"
  run as_erin kubectl --context "$c" get ns || die "$c refused erin's get ns"
  run as_erin kubectl --context "$c" auth can-i '*' '*' || die "erin is not cluster-admin on $c"
  ok "erin is cluster-admin on $c, as the hub's $ADMIN_ROLE_NAME"
done
for c in m1-api m1-untagged; do
  if as_erin kubectl --context "$c" get ns 2>"$WORK/erin-$c.err"; then
    die "$c let erin in as $ADMIN_ROLE_NAME"
  fi
done
refused "m1-api (managed, not env=prod: eks-view and eks-edit only): $(tail -n 1 "$WORK/erin-m1-api.err")"
refused "m1-untagged (not managed): $(tail -n 1 "$WORK/erin-m1-untagged.err")"

step "24. erin leaves: her key and user are deleted; CloudTrail's DeleteUser event is handled as the iam-events Lambda would"
run aws iam delete-access-key --user-name erin --access-key-id "$ERIN_ID"
run aws iam delete-user --user-name erin
sed -e 's/\bdave\b/erin/g' "$ROOT/events/iam-delete-user.json" >"$WORK/delete-erin.json"
run as_function "$CLI" --config "$CONFIG3" handle-event "$WORK/delete-erin.json" 2>/dev/null \
  || die "the DeleteUser event failed"
if trust_principals | grep -Eq "user/erin\"|$ERIN_UID"; then
  die "the trust policy of $ADMIN_ROLE_NAME still names erin"
fi
ok "the trust policy of $ADMIN_ROLE_NAME no longer names erin (neither her ARN nor her unique ID $ERIN_UID)"

step "25. A fresh assume is refused, so both member clusters are out of reach"
if as "$ERIN_ID" "$ERIN_SECRET" aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name erin \
  --output text --query AssumedRoleUser.Arn 2>"$WORK/erin-assume.err"; then
  die "erin could still assume $ADMIN_ROLE_NAME"
fi
refused "assume-role with her old key (it died with her user): $(tail -n 1 "$WORK/erin-assume.err")"
for c in m1-prod m2-api; do
  if as_erin kubectl --context "$c" auth whoami 2>"$WORK/erin-gone-$c.err"; then
    die "$c still answered erin"
  fi
  refused "kubectl on $c (aws eks get-token assumes $ADMIN_ROLE_NAME afresh): $(grep -m1 -o \
    'An error occurred ([A-Za-z]*)[^:]*' "$WORK/erin-gone-$c.err" || tail -n 1 "$WORK/erin-gone-$c.err")"
done
# The trust policy refuses her too: someone re-created as erin (without the tag) gets AccessDenied.
run aws iam create-user --user-name erin --output text --query User.Arn
read -r ERIN_ID ERIN_SECRET < <(aws iam create-access-key --user-name erin \
  --query 'AccessKey.[AccessKeyId,SecretAccessKey]' --output text)
if as_erin aws sts assume-role --role-arn "$ROLE_ARN" --role-session-name erin \
  --output text --query AssumedRoleUser.Arn 2>"$WORK/erin-assume2.err"; then
  die "a re-created erin could assume $ADMIN_ROLE_NAME"
fi
refused "assume-role as a re-created erin: $(tail -n 1 "$WORK/erin-assume2.err")"
if as_erin kubectl --context m1-prod auth whoami 2>"$WORK/erin-again.err"; then
  die "m1-prod answered a re-created erin"
fi
refused "kubectl on m1-prod as a re-created erin: $(grep -m1 -o 'An error occurred ([A-Za-z]*)[^:]*' \
  "$WORK/erin-again.err" || tail -n 1 "$WORK/erin-again.err")"
printf '%s(a session assumed before the removal lasts until it expires, at most 1 h: the member clusters trust the role, not the user)%s\n' \
  "$dim" "$reset"

step "26. Nothing left to do, in any account"
run as_function "$CLI" --config "$CONFIG3" plan --exit-code 2>/dev/null \
  || die "changes pending after the DeleteUser event"
ok "the hub's trust policies and every cluster of the organization in step"
