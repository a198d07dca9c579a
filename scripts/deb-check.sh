#!/usr/bin/env bash
# The .deb as a user meets it (as root, on a Debian machine without reconfig installed):
#   scripts/deb-check.sh reconfig_VERSION_amd64.deb
# lintian finds no error; dpkg -i installs it; reconfig --version runs; man finds the
# pages; the unit is installed but not enabled; dpkg --purge leaves none of its files.
set -euo pipefail
deb=$(realpath "${1:?usage: scripts/deb-check.sh DEB}")
fail() { echo "deb-check: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

dpkg -s reconfig >/dev/null 2>&1 && fail "reconfig is installed already; dpkg --purge reconfig first"

step "lintian $(basename "$deb")"
lintian --fail-on error --tag-display-limit 0 "$deb" || fail "lintian reports errors"

step "dpkg -i"
dpkg -i "$deb" >/dev/null
trap 'dpkg --purge reconfig >/dev/null 2>&1 || true' EXIT
/usr/bin/reconfig --version
/usr/bin/etcd-util --help >/dev/null
man -w reconfig >/dev/null || fail "man -w reconfig: no page"
man -w 5 reconfig.d >/dev/null || fail "man -w 5 reconfig.d: no page"
man -w etcd-util >/dev/null || fail "man -w etcd-util: no page"
step "man pages: $(man -w reconfig) $(man -w 5 reconfig.d) $(man -w etcd-util)"
[ -f /lib/systemd/system/reconfig.service ] || fail "no systemd unit"
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  [ "$(systemctl is-enabled reconfig 2>/dev/null || true)" != enabled ] || fail "the unit is enabled"
fi
[ -d /etc/reconfig/conf.d ] && [ -d /etc/reconfig/templates ] || fail "no /etc/reconfig/{conf.d,templates}"
[ -z "$(ls -A /etc/reconfig/conf.d)" ] || fail "/etc/reconfig/conf.d is not empty"
files=$(dpkg -L reconfig)

step "dpkg --purge"
dpkg --purge reconfig >/dev/null
trap - EXIT
# Every path of the package names reconfig or etcd-util, except shared directories
# (/usr/bin, ...) which other packages own: those named so must all be gone.
left=""
while read -r path; do
  case $path in
    *reconfig*|*etcd-util*) if [ -e "$path" ]; then left="$left $path"; fi ;;
  esac
done <<<"$files"
[ -z "$left" ] || fail "left after purge:$left"
[ ! -e /etc/reconfig ] || fail "/etc/reconfig left after purge"
[ ! -e /etc/default/reconfig ] || fail "/etc/default/reconfig left after purge"
echo "deb-check: OK"
