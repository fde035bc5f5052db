#!/usr/bin/env bash
# Builds the imbridge container image offline, FROM scratch, with buildah: no
# base image and no registry. The image holds
#   /usr/bin/imbridge-*, imbridgectl    the stripped binaries (cmake --install)
#   the shared libraries they need      found with ldd, and the dynamic loader
#   /etc/ssl/certs/ca-certificates.crt  the host's CA bundle (ca-certificates)
#   /etc/passwd, /etc/group             root and imbridge (uid/gid 10001)
#   /etc/imbridge/*.example.yaml        the example configs
#   /usr/share/imbridge/sandbox/web     the sandbox's page
#   /var/lib/imbridge                   a VOLUME owned by imbridge, 0700
# and runs as imbridge (10001). There is no entrypoint: the command names the
# process, e.g. `imbridge-router --config /etc/imbridge/router.yaml` (the
# default), `imbridge-adapter-slack --config ...`, `imbridgectl stats`.
# Nothing in it needs a writable root: run it with --read-only.
#
# usage: deploy/container/build-image.sh [--build-dir DIR] [--tag NAME]
#                                        [--archive FILE]
#   --build-dir DIR   the CMake build directory with the binaries (build/)
#   --tag NAME        the image name (imbridge:<version>)
#   --archive FILE    also write the image as an OCI archive, for machines
#                     without a registry (podman load -i FILE)
# buildah's global options come from BUILDAH_OPTS, e.g.
#   BUILDAH_OPTS="--storage-driver vfs"   where overlay is not available.
set -euo pipefail
root_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build_dir="$root_dir/build"
tag=""
archive=""
while [ $# -gt 0 ]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --archive) archive="$2"; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-image.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

die() { echo "build-image.sh: $*" >&2; exit 1; }
[ -f "$build_dir/CMakeCache.txt" ] || die "$build_dir is not a CMake build directory"
command -v buildah >/dev/null || die "buildah is not installed (apt-get install buildah)"
version="$(sed -n 's/^CMAKE_PROJECT_VERSION:STATIC=//p' "$build_dir/CMakeCache.txt")"
[ -n "$version" ] || die "no project version in $build_dir/CMakeCache.txt"
tag="${tag:-imbridge:$version}"
# shellcheck disable=SC2086
buildah() { command buildah ${BUILDAH_OPTS:-} "$@"; }

staging="$(mktemp -d)"
container=""
cleanup() {
  if [ -n "$container" ]; then buildah rm "$container" >/dev/null 2>&1 || true; fi
  rm -rf "$staging"
}
trap cleanup EXIT
rootfs="$staging/rootfs"

# The binaries, configs and the sandbox page, stripped; no units or docs.
DESTDIR="$rootfs" cmake --install "$build_dir" --prefix /usr --strip >/dev/null
rm -rf "$rootfs/usr/lib/systemd" "$rootfs/usr/share/doc"

# The shared libraries, at the paths ldd resolves them to (the loader looks
# in /lib/x86_64-linux-gnu and /usr/lib/x86_64-linux-gnu without a cache).
libraries="$(for binary in "$rootfs"/usr/bin/*; do ldd "$binary"; done |
  awk '/=> \// { print $3 } /^[[:space:]]*\/[^ ]*ld-linux/ { print $1 }' | sort -u)"
[ -n "$libraries" ] || die "ldd found no libraries"
for library in $libraries; do
  mkdir -p "$rootfs$(dirname "$library")"
  cp -L "$library" "$rootfs$library"
done
for binary in "$rootfs"/usr/bin/*; do
  if LD_LIBRARY_PATH='' ldd "$binary" | grep -q 'not found'; then
    die "$(basename "$binary"): a library is not found: $(ldd "$binary" | grep 'not found')"
  fi
done

# CA certificates, users, name resolution, the data volume, /tmp.
mkdir -p "$rootfs/etc/ssl/certs" "$rootfs/tmp" "$rootfs/var/lib/imbridge"
cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
cat > "$rootfs/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/usr/sbin/nologin
imbridge:x:10001:10001:imbridge:/var/lib/imbridge:/usr/sbin/nologin
PASSWD
cat > "$rootfs/etc/group" <<'GROUP'
root:x:0:
imbridge:x:10001:
GROUP
printf 'hosts: files dns\n' > "$rootfs/etc/nsswitch.conf"
chmod 1777 "$rootfs/tmp"
chown 10001:10001 "$rootfs/var/lib/imbridge"
chmod 0700 "$rootfs/var/lib/imbridge"

container="$(buildah from scratch)"
mountpoint="$(buildah mount "$container")"
cp -a "$rootfs/." "$mountpoint/"
buildah umount "$container" >/dev/null
buildah config \
  --user 10001:10001 \
  --env PATH=/usr/bin \
  --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
  --workingdir /var/lib/imbridge \
  --volume /var/lib/imbridge \
  --port 7700 --port 7701 \
  --cmd '["imbridge-router", "--config", "/etc/imbridge/router.yaml"]' \
  --label org.opencontainers.image.title=imbridge \
  --label org.opencontainers.image.version="$version" \
  --label org.opencontainers.image.description="imbridge router, adapters and imbridgectl; the command picks the process" \
  "$container"
buildah commit --quiet --rm "$container" "$tag" >/dev/null
container=""
if [ -n "$archive" ]; then
  rm -f "$archive"
  buildah push --quiet "$tag" "oci-archive:$archive:$tag"
fi
echo "$tag"
