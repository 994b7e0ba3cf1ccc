#!/bin/sh
# slim-rootfs.sh ROOT PACKAGE...: the files of Debian packages installed
# here, copied into ROOT, a root filesystem for a `FROM scratch` stage (the
# Dockerfile's `slim` image). Run as root in a Debian stage where the
# packages are installed (and the user the image runs as exists).
#
# What ROOT gets:
# - every file of each PACKAGE and of the packages it depends on (Depends,
#   Pre-Depends, recursively; a virtual package through what provides it),
#   leaving out docs but copyrights, man pages, info, locales, and glibc's
#   gconv modules (iconv from and to charsets other than UTF-8, ASCII and
#   Latin-1); a dependency that is Debian's packaging machinery (dpkg, perl,
#   debconf, ...) is not followed: ROOT has no package manager;
# - the alternatives that point into ROOT (awk -> mawk, which);
# - /etc/passwd, /etc/group, /etc/nsswitch.conf, the ld.so cache for ROOT,
#   /etc/ssl/certs if there is one, and the state folder /var/lib/drover
#   with its owner;
# - /var/lib/dpkg/status.d/PACKAGE: each package's dpkg entry (as distroless
#   images have them), so that scanners see what ROOT holds.
# It fails if a program or library in ROOT lacks a library it links.
set -eu

[ $# -ge 2 ] || { echo "usage: $0 ROOT PACKAGE..." >&2; exit 2; }
root=$1
shift
mkdir -p "$root"

# Dependencies not followed: a package manager's machinery, useless without
# one (and perl, 11 MB).
skip=" dpkg debconf debconf-2.0 perl-base adduser init-system-helpers lsb-base sysvinit-utils install-info ucf "

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# Installed packages, and what each provides: "name provided-name...".
dpkg-query -W -f '${db:Status-Abbrev}|${Package}|${Provides}\n' |
  awk -F'|' '$1 ~ /^ii/ {
      n = split($3, p, ","); out = $2
      for (i = 1; i <= n; i++) { sub(/^[ \t]+/, "", p[i]); sub(/[ \t(].*/, "", p[i]); out = out " " p[i] }
      print out
    }' >"$tmp/installed"

# The installed package NAME is, or that provides NAME; nothing if none.
# NAME may be apt-get's NAME=VERSION, NAME/RELEASE or NAME:ARCH.
resolve() {
  awk -v n="${1%%[:=/]*}" '$1 == n { print $1; exit }' "$tmp/installed" | grep . ||
    awk -v n="${1%%[:=/]*}" '{ for (i = 2; i <= NF; i++) if ($i == n) { print $1; exit } }' "$tmp/installed"
}

# The dependency closure.
: >"$tmp/want"
todo=$(printf '%s\n' "$@")
explicit=" $(for p in "$@"; do resolve "$p"; done | tr '\n' ' ') "
while [ -n "$todo" ]; do
  name=$(printf '%s\n' "$todo" | head -n 1)
  todo=$(printf '%s\n' "$todo" | tail -n +2)
  pkg=$(resolve "$name")
  if [ -z "$pkg" ]; then
    echo "slim-rootfs: $name is not installed (add it to EXTRA_PACKAGES)" >&2
    exit 1
  fi
  grep -qxF "$pkg" "$tmp/want" && continue
  case "$skip" in *" $pkg "*) case "$explicit" in *" $pkg "*) ;; *) continue ;; esac ;; esac
  echo "$pkg" >>"$tmp/want"
  # Each "a | b (>= 1)" item: the first alternative that is installed.
  deps=$(dpkg-query -W -f '${Pre-Depends},${Depends}\n' "$pkg" | tr ',' '\n' |
    while IFS= read -r item; do
      [ -n "$(printf '%s' "$item" | tr -d ' ')" ] || continue
      chosen=""
      for alt in $(printf '%s\n' "$item" | sed 's/([^)]*)//g; s/\[[^]]*\]//g; s/|/ /g'); do
        chosen=$(resolve "$alt")
        [ -n "$chosen" ] && break
      done
      if [ -z "$chosen" ]; then
        echo "slim-rootfs: $pkg depends on $item, which is not installed" >&2
        : >"$tmp/failed"
      fi
      echo "$chosen"
    done)
  [ ! -e "$tmp/failed" ] || exit 1
  todo=$(printf '%s\n%s\n' "$todo" "$deps" | sed '/^$/d')
done

# The top level's links (merged /usr: /bin -> usr/bin, ...), in ROOT too;
# paths through them are copied where they lead.
map=""
for link in /*; do
  [ -L "$link" ] || continue
  cp -P "$link" "$root/"
  map="$map; s#^$link\(/\|\$\)#/$(readlink "$link")\1#"
done
map=${map#; }

# The packages' files (and directories, for their modes).
# shellcheck disable=SC2046 # one package a word
dpkg-query -L $(cat "$tmp/want") >"$tmp/listed"
grep -v -e '^$' -e '^/\.\?$' -e '^package diverts' -e '^diverted by' \
  -e '^/usr/share/doc/.*/.' -e '^/usr/share/\(man\|info\|locale\|lintian\|linda\|groff\|bug\|menu\)/' \
  -e '/gconv/' "$tmp/listed" >"$tmp/files" || true
grep '^/usr/share/doc/[^/]*/copyright$' "$tmp/listed" >>"$tmp/files" || true
if [ -n "$map" ]; then sed -i "$map" "$tmp/files"; fi
sort -u "$tmp/files" | while IFS= read -r f; do
  # Not what is absent (dpkg's path-exclude, a diverted name), nor a
  # folder reached through a link.
  if [ -L "$f" ] || { [ -e "$f" ] && [ ! -d "$f" ]; } || { [ -d "$f" ] && [ "$(realpath "$f")" = "$f" ]; }; then
    printf '%s\n' "${f#/}"
  fi
done >"$tmp/copy"
tar -C / --no-recursion -cf - -T "$tmp/copy" | tar -C "$root" -xpf -

# Alternatives whose choice is in ROOT, and the links to them.
mkdir -p "$root/etc/alternatives"
for alt in /etc/alternatives/*; do
  [ -L "$alt" ] || continue
  target=$(readlink "$alt")
  [ -e "$root$target" ] || [ -L "$root$target" ] || continue
  cp -P "$alt" "$root/etc/alternatives/"
done
for dir in /usr/bin /usr/sbin /usr/local/bin; do
  [ -d "$dir" ] || continue
  for link in "$dir"/*; do
    if [ -L "$link" ] && [ ! -e "$root$link" ]; then
      case "$(readlink "$link")" in
        /etc/alternatives/*)
          if [ -L "$root$(readlink "$link")" ]; then cp -P "$link" "$root$link"; fi
          ;;
      esac
    fi
  done
done

# Users, name lookup, the loader's cache, certificates, the state folder.
mkdir -p "$root/etc"
for f in /etc/passwd /etc/group /etc/nsswitch.conf /etc/ld.so.conf; do
  [ -e "$f" ] && cp -p "$f" "$root$f"
done
[ -d /etc/ld.so.conf.d ] && cp -a /etc/ld.so.conf.d "$root/etc/"
[ -d /etc/ssl/certs ] && mkdir -p "$root/etc/ssl" && cp -a /etc/ssl/certs "$root/etc/ssl/"
ldconfig -r "$root"
mkdir -p "$root/var/lib" "$root/tmp"
chmod 1777 "$root/tmp"
cp -a /var/lib/drover "$root/var/lib/"

# dpkg's entry of each package (no dpkg database: nothing can install).
mkdir -p "$root/var/lib/dpkg/status.d"
while IFS= read -r pkg; do
  dpkg-query -s "$pkg" >"$root/var/lib/dpkg/status.d/$pkg"
done <"$tmp/want"

# Every ELF file's libraries are in ROOT.
loader=$(find "$root/usr/lib" "$root/usr/lib64" -maxdepth 2 -name 'ld-linux*.so.*' 2>/dev/null | head -n 1)
loader=${loader#"$root"}
missing=$(
  find "$root/usr" -type f \( -perm -u+x -o -name '*.so*' \) | while IFS= read -r f; do
    head -c 4 "$f" | grep -q 'ELF' || continue
    chroot "$root" "$loader" --list "${f#"$root"}" 2>&1 |
      grep -e 'not found' -e 'cannot open shared object' | sed "s|^|${f#"$root"}: |"
  done
)
if [ -n "$missing" ]; then
  printf 'slim-rootfs: missing libraries:\n%s\n' "$missing" >&2
  exit 1
fi

printf 'slim-rootfs: %s packages, %s\n' "$(wc -l <"$tmp/want")" "$(du -sh "$root" | cut -f1)"
tr '\n' ' ' <"$tmp/want"
echo
