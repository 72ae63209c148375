#!/usr/bin/env python3
"""PID 1 of a sandbox run; started by run.py through
`unshare --mount --pid --fork --mount-proc --kill-child`.

It stands for the machine:
  1. bind-mounts the private tree over /etc, /opt, /home, /var/log, /run,
     /tmp and /dev/console (and /dev/null over any command a scenario hides),
  2. starts the user-data script the way cloud-init does (bash, as root,
     a small clean environment, output to one file),
  3. reaps everything that gets orphaned to it, like init,
  4. on SIGTERM, which the power-off stub sends, notes the time and exits:
     the kernel then kills every process left in the PID namespace, watchdogs
     and runner included. If nothing is left running it exits by itself.

Its one argument is a JSON file written by run.py.
"""

import ctypes
import json
import os
import signal
import subprocess
import sys
import time

MS_BIND = 4096

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]


def bind(fd: int, target: str) -> None:
    # The source is named through /proc/self/fd: it may sit below a directory
    # that an earlier bind mount has already covered (an --out under /tmp).
    source = f"/proc/self/fd/{fd}".encode()
    if libc.mount(source, target.encode(), None, MS_BIND, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bind mount onto {target}: {os.strerror(err)}")


def main() -> int:
    with open(sys.argv[1]) as f:
        cfg = json.load(f)
    if os.getpid() != 1:
        print("nsinit: not PID 1 of a new PID namespace", file=sys.stderr)
        return 2

    sources = [(os.open(src, os.O_PATH), target) for src, target in cfg["binds"]]
    for fd, target in sources:
        bind(fd, target)
        os.close(fd)

    state = cfg["state_dir"]  # as seen inside the sandbox

    def power_cut(signum, frame):
        with open(f"{state}/poweroff-at", "w") as f:
            f.write(repr(time.time()))
        os._exit(0)

    signal.signal(signal.SIGTERM, power_cut)

    if cfg.get("signals_ignored"):
        # As a background command of a non-interactive shell starts.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGQUIT, signal.SIG_IGN)
    output = open(f"{state}/script-output.log", "ab")
    start = time.time()
    with open(f"{state}/t0", "w") as f:
        f.write(repr(start))
    script = subprocess.Popen(
        ["/bin/bash", cfg["script"]],
        env=cfg["env"],
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
        cwd="/",
    )
    while True:
        try:
            pid, status = os.waitpid(-1, 0)
        except ChildProcessError:
            break  # nothing left in the namespace
        if pid == script.pid:
            with open(f"{state}/script-exit", "w") as f:
                f.write(str(os.waitstatus_to_exitcode(status)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
