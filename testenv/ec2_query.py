"""The EC2 Query protocol's flattened lists, shared by the EC2 shim and the
IAM model: `Prefix.1`, `Prefix.2`, ... as sent by every AWS SDK.
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/Query-Requests.html
"""

from __future__ import annotations

from typing import Mapping


def indexed(params: Mapping[str, str], prefix: str) -> list[str]:
    """Values of prefix.1, prefix.2, ... in index order."""
    out = []
    for key, value in params.items():
        if key.startswith(prefix + "."):
            rest = key[len(prefix) + 1 :]
            if rest.isdigit():
                out.append((int(rest), value))
    return [v for _, v in sorted(out)]
