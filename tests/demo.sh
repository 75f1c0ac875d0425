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
# Needs: BIN_DIR (eks-access-sync, eks-sandbox), SANDBOX_DIR (.sandbox, with
# the env file `eks-sandbox up` writes and `eks-sandbox seed` adds
# TRUST_LOCK_TABLE to), aws (awscli v1) and kubectl on PATH.
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
