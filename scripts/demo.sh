#!/usr/bin/env bash
# A full start -> stop cycle against local stand-ins: no AWS account, no
# GitHub. Starts moto behind the EC2 shim and the GitHub stand-in on
# 127.0.0.1, registers a throw-away GitHub App, sets spot prices, then runs
# `ec2-spot-runner start` and `stop` exactly as a workflow would.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/ec2-spot-runner/target}"

venv=$(bash testenv/setup.sh | tail -n 1)
echo "== building ec2-spot-runner"
cargo build --quiet --bin ec2-spot-runner
bin="$CARGO_TARGET_DIR/debug/ec2-spot-runner"

work=$(mktemp -d)
server_pid=""
cleanup() {
    [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

echo "== starting the stand-ins"
"$venv/bin/python" testenv/serve.py --ready-file "$work/ready.json" 2>"$work/serve.log" &
server_pid=$!
for _ in $(seq 1 600); do
    [[ -s "$work/ready.json" ]] && break
    sleep 0.1
done
[[ -s "$work/ready.json" ]] || { cat "$work/serve.log" >&2; exit 1; }
url() { "$venv/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$work/ready.json" "$1"; }
ec2=$(url ec2)
github=$(url github)
echo "   EC2 (moto + shim): $ec2    GitHub stand-in: $github"

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/app.pem" 2>/dev/null
openssl pkey -in "$work/app.pem" -pubout -out "$work/app.pub"
"$venv/bin/python" - "$github" "$ec2" "$work/app.pub" <<'PY'
import json, sys, urllib.request
github, ec2, pub = sys.argv[1], sys.argv[2], open(sys.argv[3]).read()
def post(url, body):
    req = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    urllib.request.urlopen(req).read()
post(f"{github}/_standin/config", {
    "apps": [{"id": 1234, "client_id": "Iv23liDemoApp", "public_key_pem": pub,
              "installations": [{"id": 55, "account": "acme", "account_type": "Organization",
                                 "repositories": ["acme/widgets"]}]}],
    "tokens": [], "auto_online_after": 1})
post(f"{ec2}/_shim/spot-prices", [
    {"instance_type": "c7i.large", "availability_zone": "us-east-1a", "price": "0.0412"},
    {"instance_type": "c7i.large", "availability_zone": "us-east-1b", "price": "0.0335"},
    {"instance_type": "c6i.large", "availability_zone": "us-east-1a", "price": "0.0371"},
    {"instance_type": "c6i.large", "availability_zone": "us-east-1c", "price": "0.0398"}])
post(f"{ec2}/_shim/config", {"pending_seconds": 1.0})
PY

export AWS_ENDPOINT_URL_EC2="$ec2" AWS_ACCESS_KEY_ID=demo AWS_SECRET_ACCESS_KEY=demo \
    AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true \
    AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null \
    GITHUB_API_URL="$github" GITHUB_REPOSITORY=acme/widgets \
    GITHUB_RUN_ID=1001 GITHUB_RUN_ATTEMPT=1 GITHUB_JOB=demo
GITHUB_APP_PRIVATE_KEY=$(cat "$work/app.pem")
export GITHUB_STEP_SUMMARY="$work/summary.md"

echo
echo "== ec2-spot-runner start"
"$bin" start --github-app-id 1234 --github-app-private-key "$GITHUB_APP_PRIVATE_KEY" \
    --image-id ami-1e749f67 --instance-types c7i.large,c6i.large \
    --tags "team=demo" | tee "$work/start.out"
label=$(sed -n 's/^label=//p' "$work/start.out")
echo
echo "== the step summary start wrote"
cat "$GITHUB_STEP_SUMMARY"

echo
echo "== ec2-spot-runner stop --label $label"
"$bin" stop --github-app-id 1234 --github-app-private-key "$GITHUB_APP_PRIVATE_KEY" --label "$label"

echo
echo "== what is left"
"$venv/bin/python" - "$ec2" <<'PY'
import json, sys, urllib.request
import boto3
calls = json.load(urllib.request.urlopen(f"{sys.argv[1]}/_shim/calls"))
print("EC2 calls:", ", ".join(c["action"] for c in calls))
ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=sys.argv[1],
                   aws_access_key_id="demo", aws_secret_access_key="demo")
for reservation in ec2.describe_instances()["Reservations"]:
    for i in reservation["Instances"]:
        print(f"instance {i['InstanceId']}: {i['State']['Name']}")
PY
echo "demo finished: the instance was launched, ran, and was terminated."
