#!/usr/bin/env bash
# Installs the system packages drctl's tests and lab use (real PostgreSQL 15,
# BIND 9, HAProxy) when they are missing. Needs root for apt;
# without root it prints the exact command to run instead.
set -euo pipefail
need=()
[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
command -v runuser >/dev/null || need+=(util-linux)
[ -x /usr/sbin/named ] || need+=(bind9)
command -v dig >/dev/null || need+=(bind9-dnsutils)
[ -x /usr/sbin/haproxy ] || need+=(haproxy)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages: ${need[*]}; install them with: sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian's packages start services of their own where they can; the tests
# start their own servers on free ports and need none of them.
if command -v pg_lsclusters >/dev/null && pg_lsclusters -h 2>/dev/null | grep -q online; then
  pg_ctlcluster 15 main stop || true
fi
for svc in named haproxy; do
  if command -v service >/dev/null; then service "$svc" stop >/dev/null 2>&1 || true; fi
done
