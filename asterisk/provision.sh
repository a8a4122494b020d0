#!/usr/bin/env bash
# Provide an Asterisk >= 20 for the hotline and print how to run it, one line:
#   host <path-to-asterisk>     an asterisk already on PATH is used as it is
#   root <path-to-root>         a Debian sid root (built once, cached) run in a mount namespace
# Debian 12/13 ship no asterisk package; sid does. See ../shared/notes/platform.md.
set -euo pipefail

ROOT=${IVR_ASTERISK_ROOT:-/var/cache/ivr12345/asterisk-root}

if command -v asterisk >/dev/null 2>&1; then
  major=$(asterisk -V 2>/dev/null | sed -n 's/^Asterisk \([0-9]*\).*/\1/p')
  if [ -n "$major" ] && [ "$major" -ge 20 ]; then
    echo "host $(command -v asterisk)"
    exit 0
  fi
fi

if [ ! -x "$ROOT/usr/sbin/asterisk" ]; then
  command -v mmdebstrap >/dev/null 2>&1 || {
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mmdebstrap >&2
  }
  mkdir -p "$(dirname "$ROOT")"
  tmp="$ROOT.tmp.$$"
  rm -rf "$tmp"
  echo "building the Asterisk root in $ROOT (once; about half a minute)" >&2
  # python3 lets the benchmark run classic AGI scripts inside the root.
  mmdebstrap --variant=minbase --aptopt='Acquire::Check-Valid-Until "false"' \
    --include=asterisk,python3 sid "$tmp" >&2
  mv "$tmp" "$ROOT"
fi

# Asterisk looks up its own host name at start; with no network here the look-ups must
# answer locally, or SIP replies lag into retransmissions under load.
printf '127.0.0.1 localhost %s\n::1 localhost\n' "$(hostname)" > "$ROOT/etc/hosts"
: > "$ROOT/etc/resolv.conf"
mkdir -p "$ROOT/ivrhome"
echo "root $ROOT"
