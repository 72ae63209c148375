#!/usr/bin/env python3
"""A strict IMDSv2 stand-in: the EC2 instance metadata service, as a booted
guest sees it at http://169.254.169.254 (boot_tests.py forwards that address
to this server on 127.0.0.1). Standard library only.

    python3 imds.py --port 0 --user-data FILE [--instance-type c7i.large] ...
    (or, from a harness: Imds(...).start(); imds.schedule_interruption(...))

Behaviour, as AWS documents it for an instance whose metadata options say
HttpTokens=required (what ec2-spot-runner launches with):
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instancedata-data-retrieval.html
https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/configuring-instance-metadata-service.html

* `PUT /latest/api/token` needs `X-aws-ec2-metadata-token-ttl-seconds`, an
  integer from 1 to 21600: missing or out of range is 400. A PUT that carries
  `X-Forwarded-For` is refused (403), as IMDS refuses tokens through a proxy.
  The answer is the token (text); it is valid for that many seconds.
* Every GET needs a valid token in `X-aws-ec2-metadata-token`: without one,
  or with an unknown or expired one, 401 (IMDSv1 is off). Other methods: 405.
* Paths: `/` lists the versions; `/latest/` and every dated version
  (cloud-init probes 2021-03-23, 2018-09-24, 2016-09-02, then 2009-04-04)
  serve the same tree: `meta-data/` (a directory answers its listing, one
  entry a line, sub-directories with a trailing `/`), `user-data` (the exact
  bytes RunInstances received, base64-decoded, so gzip stays gzip; 404 when
  there is none), `dynamic/instance-identity/document` and friends.
* `meta-data/spot/instance-action` (and `spot/termination-time`) answer 404,
  and `spot/` is not listed, until the harness schedules an interruption
  (`schedule_interruption`): from then on
  `{"action": "terminate", "time": "…"}`, as during the two-minute warning.

Every request is logged (method, path, status, whether it carried a valid
token) in `calls`; tokens and user data never are.
"""

import argparse
import http.server
import json
import secrets
import sys
import threading
import time

VERSIONS = ["1.0", "2007-01-19", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest"]
TOKEN_TTL_MAX = 21600


class Imds:
    def __init__(self, user_data=None, instance_id="i-0ec2b00710000001", instance_type="c7i.large",
                 zone="us-east-1a", mac="0e:c2:5b:00:00:01", local_ipv4="10.0.2.15", ami="ami-0ec2b007",
                 lifecycle="spot", port=0):
        self.user_data = user_data
        self.lock = threading.Lock()
        self.tokens = {}  # token -> expiry (monotonic)
        self.calls = []
        self.interruption = None  # (visible_from_monotonic, body)
        self.started = time.monotonic()
        region = zone[:-1]
        hostname = "ip-" + local_ipv4.replace(".", "-") + ".ec2.internal"
        mac_tree = {
            "device-number": "0",
            "interface-id": "eni-0ec2b00710000001",
            "local-hostname": hostname,
            "local-ipv4s": local_ipv4,
            "mac": mac,
            "owner-id": "123456789012",
            "security-group-ids": "sg-0ec2b00710000001",
            "security-groups": "default",
            "subnet-id": "subnet-0ec2b0071",
            "subnet-ipv4-cidr-block": "10.0.2.0/24",
            "vpc-id": "vpc-0ec2b0071",
            "vpc-ipv4-cidr-block": "10.0.0.0/16",
            "vpc-ipv4-cidr-blocks": "10.0.0.0/16",
        }
        self.meta = {
            "ami-id": ami,
            "ami-launch-index": "0",
            "ami-manifest-path": "(unknown)",
            "block-device-mapping": {"ami": "/dev/xvda", "root": "/dev/xvda"},
            "hostname": hostname,
            "instance-action": "none",
            "instance-id": instance_id,
            "instance-life-cycle": lifecycle,
            "instance-type": instance_type,
            "local-hostname": hostname,
            "local-ipv4": local_ipv4,
            "mac": mac,
            "network": {"interfaces": {"macs": {mac: mac_tree}}},
            "placement": {"availability-zone": zone, "availability-zone-id": "use1-az1", "region": region},
            "reservation-id": "r-0ec2b00710000001",
            "security-groups": "default",
            "services": {"domain": "amazonaws.com", "partition": "aws"},
        }
        self.identity = json.dumps({
            "accountId": "123456789012", "architecture": "x86_64", "availabilityZone": zone,
            "imageId": ami, "instanceId": instance_id, "instanceType": instance_type,
            "pendingTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "privateIp": local_ipv4,
            "region": region, "version": "2017-09-30",
        }, indent=2)
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = None

    # -- harness side

    def start(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.1,), daemon=True)
        self.thread.start()
        return self

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

    def schedule_interruption(self, after_seconds=0.0, action="terminate", notice_time=None):
        """From `after_seconds` on, spot/instance-action answers 200 with a
        notice for `notice_time` (default: two minutes after it appears)."""
        visible = time.monotonic() + after_seconds
        when = notice_time or time.strftime(
            "%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + after_seconds + 120))
        with self.lock:
            self.interruption = (visible, {"action": action, "time": when})
        return {"action": action, "time": when}

    def snapshot_calls(self):
        with self.lock:
            return list(self.calls)

    # -- the service

    def _spot(self):
        with self.lock:
            it = self.interruption
        if it and time.monotonic() >= it[0]:
            return it[1]
        return None

    def _lookup(self, rest):
        """(status, body bytes) for a path below a version."""
        if rest in ("", "/"):
            listing = ["dynamic", "meta-data"] + (["user-data"] if self.user_data is not None else [])
            return 200, "\n".join(listing).encode()
        if rest == "user-data":
            return (200, self.user_data) if self.user_data is not None else (404, b"")
        if rest.rstrip("/") == "dynamic":
            return 200, b"instance-identity/"
        if rest.startswith("dynamic/instance-identity"):
            leaf = rest[len("dynamic/instance-identity"):].strip("/")
            docs = {"document": self.identity, "pkcs7": "MIAGCSqGSIb3DQEHAqCAMIACAQExDzANBgkqhkiG9w0BAQsFADCA",
                    "signature": "c2lnbmF0dXJl"}
            if leaf == "":
                return 200, "\n".join(docs).encode()
            return (200, docs[leaf].encode()) if leaf in docs else (404, b"")
        if not (rest == "meta-data" or rest.startswith("meta-data/")):
            return 404, b""
        tree = dict(self.meta)
        spot = self._spot()
        if spot:
            tree["spot"] = {"instance-action": json.dumps(spot), "termination-time": spot["time"]}
        node = tree
        for part in [p for p in rest[len("meta-data"):].split("/") if p]:
            if not isinstance(node, dict) or part not in node:
                return 404, b""
            node = node[part]
        if isinstance(node, dict):
            return 200, "\n".join(k + "/" if isinstance(v, dict) else k for k, v in node.items()).encode()
        return 200, node.encode()

    def _handler(self):
        imds = self

        class Handler(http.server.BaseHTTPRequestHandler):
            server_version = "EC2ws"
            sys_version = ""
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def reply(self, code, body=b"", token_ok=None):
                with imds.lock:
                    imds.calls.append({"t": round(time.monotonic() - imds.started, 3), "method": self.command,
                                       "path": self.path, "status": code, "token": token_ok})
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_PUT(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                if self.path != "/latest/api/token":
                    return self.reply(404 if self.path.startswith("/latest/") else 403)
                if self.headers.get("X-Forwarded-For"):
                    return self.reply(403)
                ttl = (self.headers.get("X-aws-ec2-metadata-token-ttl-seconds") or "").strip()
                if not ttl.isdigit() or not 1 <= int(ttl) <= TOKEN_TTL_MAX:
                    return self.reply(400)
                token = secrets.token_urlsafe(42)
                with imds.lock:
                    imds.tokens[token] = time.monotonic() + int(ttl)
                self.reply(200, token.encode())

            def do_GET(self):
                token = self.headers.get("X-aws-ec2-metadata-token") or ""
                with imds.lock:
                    expiry = imds.tokens.get(token)
                valid = expiry is not None and time.monotonic() < expiry
                if not valid:
                    return self.reply(401, b"", False)
                path = self.path.split("?", 1)[0]
                if path == "/":
                    return self.reply(200, "\n".join(VERSIONS).encode(), True)
                version, _, rest = path.lstrip("/").partition("/")
                if version not in VERSIONS:
                    return self.reply(404, b"", True)
                code, body = imds._lookup(rest)
                self.reply(code, body, True)

            def do_other(self):
                self.reply(405)

            do_POST = do_DELETE = do_PATCH = do_HEAD = do_other

        return Handler


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--user-data", help="file with the user data bytes (as RunInstances got them, decoded)")
    ap.add_argument("--instance-type", default="c7i.large")
    ap.add_argument("--mac", default="0e:c2:5b:00:00:01")
    args = ap.parse_args()
    data = open(args.user_data, "rb").read() if args.user_data else None
    imds = Imds(user_data=data, instance_type=args.instance_type, mac=args.mac, port=args.port).start()
    print(f"imds.py: listening on 127.0.0.1:{imds.port}", file=sys.stderr, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        imds.stop()


if __name__ == "__main__":
    main()
