#!/bin/bash
# The bootstrap must never configure the runner: it starts from a JIT config.
# Being called at all is a test failure.
printf '%s\0' "$@" >/run/ec2sr-test/record/config-called
exit 1
