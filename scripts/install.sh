#!/usr/bin/env bash
# What goes where, once, for `make install`, `make uninstall` and the staging trees of
# `make deb` and `make dist`: uninstall removes exactly what install put, no more.
#
#   scripts/install.sh install|uninstall|list
#
# Environment (the Makefile passes its variables):
#   DESTDIR   staging root, prepended to every path (default: none)
#   PREFIX    /usr/local by default; the tree below it is bin/, share/man/, share/...
#   BIN_DIR   where the built binaries are (default: target/release)
#   GENERATOR a reconfig that runs here, to make the man pages and completions
#             (default: BIN_DIR/reconfig; set it when BIN_DIR holds another architecture's)
#   ZSH_DIR   the zsh completion dir below PREFIX (default: share/zsh/site-functions)
#   MAN_GZIP  1: man pages compressed with gzip -9n (Debian policy)
# Nothing is installed under /etc: the service definitions are examples in the doc dir.
set -euo pipefail
cd "$(dirname "$0")/.."
umask 022

action=${1:-}
destdir=${DESTDIR:-}
prefix=${PREFIX-/usr/local}
bin_dir=${BIN_DIR:-${CARGO_TARGET_DIR:-target}/release}
generator=${GENERATOR:-$bin_dir/reconfig}
zsh_dir=${ZSH_DIR:-share/zsh/site-functions}
man_gzip=${MAN_GZIP:-0}
doc_dir=share/doc/reconfig

fail() { echo "install.sh: $*" >&2; exit 1; }

# The example files, in a stable order: conf.d and templates as reconfig reads them from
# a --cfgdir, and the service definitions of contrib/.
examples() {
  (LC_ALL=C; cd conf-example && find . -type f | sort) | sed 's|^\./||' | while read -r f; do
    echo "conf-example/$f examples/$f"
  done
  (LC_ALL=C; cd templates-example && find . -type f | sort) | sed 's|^\./||' | while read -r f; do
    echo "templates-example/$f examples/templates/$f"
  done
  (LC_ALL=C; find contrib -type f | sort) | while read -r f; do echo "$f $f"; done
}

# MODE SOURCE DEST, DEST relative to PREFIX; SOURCE gen:NAME is `reconfig --generate NAME`.
manifest() {
  echo "755 $bin_dir/reconfig bin/reconfig"
  echo "755 $bin_dir/etcd-util bin/etcd-util"
  local man=share/man
  echo "644 gen:reconfig.1 $man/man1/reconfig.1"
  echo "644 gen:etcd-util.1 $man/man1/etcd-util.1"
  echo "644 gen:reconfig.d.5 $man/man5/reconfig.d.5"
  echo "644 gen:reconfig.bash share/bash-completion/completions/reconfig"
  echo "644 gen:etcd-util.bash share/bash-completion/completions/etcd-util"
  echo "644 gen:_reconfig $zsh_dir/_reconfig"
  echo "644 gen:_etcd-util $zsh_dir/_etcd-util"
  echo "644 README.md $doc_dir/README.md"
  echo "644 LICENSE $doc_dir/LICENSE"
  examples | while read -r source dest; do
    if [ -x "$source" ]; then mode=755; else mode=644; fi
    echo "$mode $source $doc_dir/$dest"
  done
}

# The installed path of DEST: below DESTDIR and PREFIX, man pages with .gz when compressed.
target_of() {
  local dest=$1
  case $dest in share/man/*) [ "$man_gzip" = 1 ] && dest=$dest.gz ;; esac
  echo "$destdir$prefix/$dest"
}

install_one() {
  local mode=$1 source=$2 dest=$3 target tmp
  target=$(target_of "$dest")
  mkdir -p "$(dirname "$target")"
  tmp=$(mktemp "$(dirname "$target")/.install.XXXXXX")
  case $source in
    gen:*) "$generator" --generate "${source#gen:}" >"$tmp" \
             || { rm -f "$tmp"; fail "$generator --generate ${source#gen:} failed"; } ;;
    *) cat "$source" >"$tmp" ;;
  esac
  if [ "$man_gzip" = 1 ] && [ "$target" != "${target%.gz}" ]; then
    gzip -9n <"$tmp" >"$tmp.gz" && mv "$tmp.gz" "$tmp"
  fi
  chmod "$mode" "$tmp"
  mv -f "$tmp" "$target"
}

case $action in
  install)
    for b in reconfig etcd-util; do
      [ -x "$bin_dir/$b" ] || fail "$bin_dir/$b is missing: run make (or make static and BIN_DIR=...)"
    done
    manifest | while read -r mode source dest; do
      install_one "$mode" "$source" "$dest"
      echo "installed $(target_of "$dest")"
    done
    ;;
  uninstall)
    manifest | while read -r _ _ dest; do
      target=$(target_of "$dest")
      if [ -e "$target" ]; then rm -f "$target" && echo "removed $target"; fi
    done
    # The doc dir is reconfig's own: its now empty directories go too.
    if [ -d "$destdir$prefix/$doc_dir" ]; then
      find "$destdir$prefix/$doc_dir" -depth -type d -empty -delete
    fi
    ;;
  list)
    manifest | while read -r _ _ dest; do target_of "$dest"; done
    ;;
  *) fail "usage: scripts/install.sh install|uninstall|list" ;;
esac
