#!/usr/bin/env bash
# Installs the system packages drctl's tests and lab use (real PostgreSQL 15,
# BIND 9 and dig, HAProxy, OpenSSH's client for signed approvals: ssh-keygen,
# ssh-agent; Chromium to render the HTML report headless) when they are missing. Needs root for apt; without root it
# prints the exact command to run instead.
#
# The list is lab.Requirements (internal/lab/deps.go), the one source that
# `drctl lab up` and `drctl demo` install the lab's packages from too; this
# is `make deps`.
set -euo pipefail
cd "$(dirname "$0")/.."
exec "${GO:-go}" run ./cmd/drctl lab deps --tests
