"""Start moto, the EC2 shim and the GitHub stand-in in one process.

    python serve.py --ready-file PATH [--ec2-port 0] [--github-port 0]
                    [--moto-port 0] [--exit-on-stdin-eof] [--no-warmup] [--verbose]

Once all three listen on 127.0.0.1 the ready file is written atomically:
    {"ec2": "http://127.0.0.1:P", "github": "http://127.0.0.1:P",
     "moto": "http://127.0.0.1:P", "pid": N}
The process exits cleanly on SIGTERM/SIGINT and, with --exit-on-stdin-eof,
when its standard input is closed.  The ready file is removed on exit.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402
import urllib.request  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def log(msg: str) -> None:
    print(f"serve.py: {msg}", file=sys.stderr, flush=True)


def write_ready(path: str, payload: dict) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(payload, fh)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def warm_up(moto_url: str, stop: threading.Event) -> None:
    """moto imports and builds a region's EC2 backend on first use (~1.5 s).
    Do that now, in the background, so the first test request is fast."""
    started = time.perf_counter()
    fake_auth = (
        "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20240101/us-east-1/{svc}/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature=0"
    )
    calls = [
        ("ec2", b"Action=DescribeRegions&Version=2016-11-15"),
        ("ec2", b"Action=DescribeSubnets&Version=2016-11-15"),
        ("iam", b"Action=ListUsers&Version=2010-05-08"),
    ]
    for svc, body in calls:
        if stop.is_set():
            return
        req = urllib.request.Request(
            moto_url + "/",
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
                "Authorization": fake_auth.format(svc=svc),
                "X-Amz-Date": "20240101T000000Z",
            },
        )
        try:
            urllib.request.urlopen(req, timeout=60).read()
        except Exception as exc:  # auth may already be enforced by a test
            log(f"warm-up {svc} call failed: {exc}")
    try:
        import jwt  # noqa: F401  (first JWT verification would import it)
        from cryptography.hazmat.primitives.serialization import load_pem_public_key  # noqa: F401
    except Exception:
        pass
    log(f"warm-up done in {(time.perf_counter() - started) * 1000:.0f} ms")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ready-file", required=True)
    ap.add_argument("--ec2-port", type=int, default=0)
    ap.add_argument("--github-port", type=int, default=0)
    ap.add_argument("--moto-port", type=int, default=0)
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    ap.add_argument("--no-warmup", action="store_true", help="skip the background moto warm-up")
    ap.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = ap.parse_args()

    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log(f"received {signal.Signals(signum).name}, shutting down")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, on_signal)

    if args.exit_on_stdin_eof:

        def watch_stdin() -> None:
            # os.read on the raw descriptor: a thread blocked in
            # sys.stdin.buffer.read would hold the BufferedReader lock and
            # make interpreter shutdown abort.
            try:
                while os.read(0, 65536):
                    pass
            except OSError:
                pass
            log("stdin closed, shutting down")
            stop.set()

        threading.Thread(target=watch_stdin, name="stdin-watch", daemon=True).start()

    if not args.verbose:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)

    t_import = time.perf_counter()
    from moto.server import ThreadedMotoServer

    import ec2_shim
    import github_standin

    t_imported = time.perf_counter()

    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=args.moto_port, verbose=False)
    moto.start()
    moto_host, moto_port = moto.get_host_and_port()
    moto_url = f"http://127.0.0.1:{moto_port}"

    shim_server, _shim = ec2_shim.make_server(
        "127.0.0.1", args.ec2_port, moto_url, in_process_moto=True, verbose=args.verbose
    )
    gh_server, _standin = github_standin.make_server("127.0.0.1", args.github_port, verbose=args.verbose)
    threads = [
        threading.Thread(target=shim_server.serve_forever, args=(0.1,), name="ec2-shim", daemon=True),
        threading.Thread(target=gh_server.serve_forever, args=(0.1,), name="github-standin", daemon=True),
    ]
    for t in threads:
        t.start()

    payload = {
        "ec2": f"http://127.0.0.1:{shim_server.server_address[1]}",
        "github": f"http://127.0.0.1:{gh_server.server_address[1]}",
        "moto": moto_url,
        "pid": os.getpid(),
    }
    write_ready(args.ready_file, payload)
    t_ready = time.perf_counter()
    log(
        f"ready in {(t_ready - T0) * 1000:.0f} ms (imports {(t_imported - t_import) * 1000:.0f} ms): "
        + json.dumps(payload)
    )

    if not args.no_warmup:
        threading.Thread(target=warm_up, args=(moto_url, stop), name="warm-up", daemon=True).start()

    while not stop.wait(0.25):
        pass

    t_stop = time.perf_counter()
    for server in (shim_server, gh_server):
        server.shutdown()
        server.server_close()
    # moto's werkzeug loop polls every 0.5 s; do not wait on it for long.
    stopper = threading.Thread(target=moto.stop, name="moto-stop", daemon=True)
    stopper.start()
    stopper.join(timeout=1.0)
    try:
        with open(args.ready_file, encoding="utf-8") as fh:
            if json.load(fh).get("pid") == os.getpid():
                os.remove(args.ready_file)
    except (OSError, ValueError):
        pass
    log(f"stopped in {(time.perf_counter() - t_stop) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
