#!/usr/bin/env bash
# Start the named local services if they are not answering: mosquitto, postgresql.
set -euo pipefail

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {
  for _ in $(seq 1 50); do port_open "$1" && return 0; sleep 0.2; done
  echo "$2 did not start on 127.0.0.1:$1" >&2
  return 1
}

for service in "$@"; do
  case "$service" in
    mosquitto)
      port_open 1883 && continue
      as_root mosquitto -d -c /etc/mosquitto/mosquitto.conf
      wait_port 1883 mosquitto ;;
    postgresql)
      port_open 5432 && continue
      version=$(ls /etc/postgresql | sort -V | tail -n 1)
      as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
      wait_port 5432 postgresql ;;
    *) echo "unknown service $service" >&2; exit 2 ;;
  esac
done
