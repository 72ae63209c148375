#!/usr/bin/env bash
# Create or refresh the Python virtualenv used by the local test environment
# (moto, the EC2 shim and the GitHub stand-in) and print its path.
#
#   EC2SR_VENV   venv location (default: $HOME/.cache/ec2-spot-runner/venv)
#   PYTHON       interpreter used to create it (default: python3)
#
# A no-op (a few milliseconds) when the venv already matches requirements.txt:
# the sha256 of requirements.txt is stored in the venv after a successful
# install and compared on the next run.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
requirements="${here}/requirements.txt"
venv="${EC2SR_VENV:-${HOME}/.cache/ec2-spot-runner/venv}"
python="${PYTHON:-python3}"
stamp="${venv}/.ec2sr-requirements.sha256"

want="$(sha256sum "${requirements}" | cut -d' ' -f1)"

if [[ -x "${venv}/bin/python" && -f "${stamp}" ]] \
    && [[ "$(cat "${stamp}")" == "${want}" ]] \
    && "${venv}/bin/python" -c 'import sys' 2>/dev/null; then
    printf '%s\n' "${venv}"
    exit 0
fi

if ! command -v "${python}" >/dev/null 2>&1; then
    echo "setup.sh: ${python} not found" >&2
    exit 1
fi

if [[ ! -x "${venv}/bin/python" ]] || ! "${venv}/bin/python" -c 'import sys' 2>/dev/null; then
    echo "setup.sh: creating venv at ${venv}" >&2
    rm -rf "${venv}"
    mkdir -p "$(dirname "${venv}")"
    "${python}" -m venv "${venv}"
fi

echo "setup.sh: installing ${requirements}" >&2
rm -f "${stamp}"
"${venv}/bin/python" -m pip install --quiet --disable-pip-version-check \
    --no-input -r "${requirements}" >&2
printf '%s\n' "${want}" > "${stamp}"

printf '%s\n' "${venv}"
