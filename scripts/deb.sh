#!/usr/bin/env bash
# Builds reconfig_VERSION_amd64.deb from static binaries, with dpkg-deb alone (no
# debhelper), into OUT_DIR (default: the current directory):
#   scripts/deb.sh BIN_DIR [OUT_DIR]
# Contents: /usr/bin/{reconfig,etcd-util}, man pages (gzip -9n), bash and zsh completions,
# the systemd unit in /lib/systemd/system (installed, not enabled: no maintainer script
# starts anything), /etc/default/reconfig (a conffile), empty /etc/reconfig/{conf.d,
# templates}, the examples and contrib/ in /usr/share/doc/reconfig. Timestamps come from
# SOURCE_DATE_EPOCH (the commit's, set by the Makefile), owners are root.
set -euo pipefail
out_dir=$(realpath "${2:-.}")
bin_dir=$(realpath "${1:?usage: scripts/deb.sh BIN_DIR [OUT_DIR]}")
cd "$(dirname "$0")/.."
umask 022

fail() { echo "deb.sh: $*" >&2; exit 1; }
for b in reconfig etcd-util; do
  [ -x "$bin_dir/$b" ] || fail "$bin_dir/$b is missing (run make static)"
done
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -1)
[ -n "$version" ] || fail "no version in Cargo.toml"
arch=amd64
maintainer=${DEB_MAINTAINER:-"reconfig maintainers <reconfig@example.org>"}
epoch=${SOURCE_DATE_EPOCH:-$(date +%s)}
export SOURCE_DATE_EPOCH=$epoch
out=$out_dir/reconfig_${version}_${arch}.deb

root=$(mktemp -d "${TMPDIR:-/tmp}/reconfig-deb.XXXXXX")
trap 'rm -rf "$root"' EXIT
chmod 755 "$root"

DESTDIR=$root PREFIX=/usr BIN_DIR=$bin_dir ZSH_DIR=share/zsh/vendor-completions MAN_GZIP=1 \
  ./scripts/install.sh install >/dev/null

doc=$root/usr/share/doc/reconfig
# Debian wants the license as doc/copyright and a compressed changelog; README stays.
rm "$doc/LICENSE"
{
  echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
  echo "Upstream-Name: reconfig"
  echo
  echo "Files: *"
  echo "Copyright: 2026 the reconfig authors"
  echo "License: Expat"
  sed -n '/^Permission/,$p' LICENSE | sed 's/^$/./; s/^/ /'
} >"$doc/copyright"
commit=$("$bin_dir/reconfig" --version 2>/dev/null | sed -n 's/^commit: //p' || true)
{
  echo "reconfig ($version) unstable; urgency=medium"
  echo
  echo "  * Release $version (commit ${commit:-unknown})."
  echo
  echo " -- $maintainer  $(LC_ALL=C date -u -d "@$epoch" -R)"
} | gzip -9n >"$doc/changelog.gz"
chmod 644 "$doc/copyright" "$doc/changelog.gz"

# The service: the contrib unit, pointed at /usr/bin. Not enabled: `systemctl enable --now
# reconfig` once conf.d holds resources.
install -d "$root/lib/systemd/system" "$root/etc/default" "$root/etc/reconfig/conf.d" \
  "$root/etc/reconfig/templates"
sed 's|/usr/local/bin/|/usr/bin/|' contrib/systemd/reconfig.service >"$root/lib/systemd/system/reconfig.service"
cp contrib/reconfig.default "$root/etc/default/reconfig"
chmod 644 "$root/lib/systemd/system/reconfig.service" "$root/etc/default/reconfig"

# lintian calls a static binary an error; here it is the point (no library to depend on,
# the same binary on every host), so it is overridden, for these two files only.
install -d "$root/usr/share/lintian/overrides"
cat >"$root/usr/share/lintian/overrides/reconfig" <<'OVERRIDES'
# Static on purpose: one binary that runs on any Linux host, with no library.
reconfig: statically-linked-binary [usr/bin/etcd-util]
reconfig: statically-linked-binary [usr/bin/reconfig]
OVERRIDES
chmod 644 "$root/usr/share/lintian/overrides/reconfig"

install -d "$root/DEBIAN"
installed_size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat >"$root/DEBIAN/control" <<CONTROL
Package: reconfig
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Section: admin
Priority: optional
Description: keep config files converged to data in etcd
 reconfig watches etcd keys and re-renders configuration files (haproxy,
 nginx, ...) from templates whenever the data changes: it checks the new
 file, installs it atomically and reloads the service. It speaks etcd's v2
 API and the v3 JSON gateway, with TLS, DNS SRV discovery and failover.
 .
 etcd-util gets, sets, deletes and watches keys from the shell, and copies
 v2 data into v3. Both binaries are static and need no library.
CONTROL
echo /etc/default/reconfig >"$root/DEBIAN/conffiles"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\n' | LC_ALL=C sort \
  | xargs -d '\n' md5sum) >"$root/DEBIAN/md5sums"
chmod 644 "$root/DEBIAN/control" "$root/DEBIAN/conffiles" "$root/DEBIAN/md5sums"
# dpkg-deb clamps every timestamp to SOURCE_DATE_EPOCH and sorts the entries.
find "$root" -exec touch -h -d "@$epoch" {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$out" >/dev/null
echo "$out"
