#!/bin/bash
# The bootstrap must never configure the runner: it starts from a JIT config.
echo "ec2sr-fake-runner: config.sh was called (a test failure)"
exit 1
