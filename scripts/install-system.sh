#!/usr/bin/env bash
# The system packages the hotline needs on Debian or Ubuntu, installed only when missing:
# SIPp (test phones), espeak-ng and sox (prompts), Mosquitto (events), PostgreSQL (the
# suite runs on it too), python3-venv, and mmdebstrap to build Asterisk where none is
# installed (asterisk/provision.sh); nftables for the controller's bans of SIP scanners and
# sipvicious (svmap, svwar, svcrack) for the security tests that play the scanner.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

need=()
command -v sipp >/dev/null 2>&1 || need+=(sip-tester)
command -v espeak-ng >/dev/null 2>&1 || need+=(espeak-ng)
command -v sox >/dev/null 2>&1 || need+=(sox)
command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
command -v pg_ctlcluster >/dev/null 2>&1 || need+=(postgresql)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v nft >/dev/null 2>&1 || need+=(nftables)
command -v svwar >/dev/null 2>&1 || need+=(sipvicious)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
if ! command -v asterisk >/dev/null 2>&1 && ! command -v mmdebstrap >/dev/null 2>&1; then
  need+=(mmdebstrap)
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
