#!/bin/sh
# Run Asterisk in the cached sid root without leaking a mount onto the host: a private mount
# namespace holds the binds and vanishes with the process. The deployment's home is seen
# inside as /ivrhome (config rendered under var/pbx, prompts, recordings).
# usage: run-pbx.sh ROOT HOME ASTERISK_CONF_INSIDE
set -eu
exec unshare -m sh -c '
  set -e
  mount --make-rprivate /
  mount --bind /proc "$1/proc"
  mount --bind /dev "$1/dev"
  # Recursive: a bigger disk mounted at recordings/ in the home comes along.
  mount --rbind "$2" "$1/ivrhome"
  exec chroot "$1" /usr/sbin/asterisk -f -n -U asterisk -G asterisk -C "$3"
' run-pbx "$1" "$2" "$3"
