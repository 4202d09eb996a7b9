#!/usr/bin/env bash
# A real Docker-Engine-compatible API for the container capability and the Docker plugin's tests: Podman's service on
# a unix socket, with a local busybox image (no registry needed). Idempotent: ~30 s the first time (apt), ~0.1 s after.
#
#   eval "$(scripts/docker-engine.sh)"     # exports DOCKER_HOST=unix://…/podman.sock
#   scripts/docker-engine.sh --stop        # stops the service this script started
#
# Settings: PLUGHOST_DOCKER_DIR (default $TMPDIR/plughost-docker) holds the socket, storage and logs;
# PLUGHOST_DOCKER_IMAGE (default localhost/busybox:test) is the seeded image.
# Only the final `export DOCKER_HOST=…` line goes to stdout; progress goes to stderr.
set -euo pipefail
D=${PLUGHOST_DOCKER_DIR:-${TMPDIR:-/tmp}/plughost-docker}
SOCK=$D/podman.sock
IMAGE=${PLUGHOST_DOCKER_IMAGE:-localhost/busybox:test}
say() { echo "docker-engine: $*" >&2; }

if [ "${1:-}" = "--stop" ]; then
  if [ -f "$D/service.pid" ] && kill "$(cat "$D/service.pid")" 2>/dev/null; then say "stopped"; fi
  rm -f "$D/service.pid" "$SOCK"
  exit 0
fi

ping() { curl -fsS --max-time 2 --unix-socket "$SOCK" http://d/_ping >/dev/null 2>&1; }

# 1. Packages (Debian 12: podman 4.3, runc 1.1). crun is not usable on a cgroup v1/v2 hybrid: runc is selected below.
need=()
command -v podman >/dev/null || need+=(podman)
command -v runc >/dev/null || need+=(runc)
command -v conmon >/dev/null || need+=(conmon)
command -v curl >/dev/null || need+=(curl)
[ -x /bin/busybox ] || need+=(busybox-static)
[ -d /usr/lib/cni ] || [ -d /usr/libexec/cni ] || need+=(containernetworking-plugins)
command -v iptables >/dev/null || need+=(iptables)
[ -e /usr/bin/catatonit ] || [ -e /usr/libexec/podman/catatonit ] || need+=(catatonit)
if [ ${#need[@]} -gt 0 ]; then
  if ! command -v apt-get >/dev/null; then
    say "missing ${need[*]} and no apt-get to install them; install Podman and busybox, or set DOCKER_HOST"; exit 1
  fi
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  say "installing ${need[*]} (apt)"
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    podman runc conmon containernetworking-plugins catatonit iptables busybox-static curl >&2
fi
mkdir -p "$D"

# 2. Config: own storage, runc, cgroupfs, file events, ulimits within this machine's hard limits (Podman's default
#    nofile/nproc of 1048576 fails with EPERM without CAP_SYS_RESOURCE).
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=1048576
NPROC=$(ulimit -Hu); [ "$NPROC" = unlimited ] && NPROC=1048576
PIDMAX=$(cat /proc/sys/kernel/pid_max); [ "$NPROC" -gt "$PIDMAX" ] && NPROC=$PIDMAX
cat >"$D/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=$NOFILE:$NOFILE", "nproc=$NPROC:$NPROC"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$D/tmp"
EOF
cat >"$D/storage.conf" <<EOF
[storage]
driver = "overlay"
graphroot = "$D/storage"
runroot = "$D/run"
EOF
export CONTAINERS_CONF="$D/containers.conf" CONTAINERS_STORAGE_CONF="$D/storage.conf"

# 3. The service (left alone when it already answers).
if ! ping; then
  rm -f "$SOCK"
  say "starting podman system service on $SOCK"
  # Started from its own directory: the service outlives the checkout that started it, and conmon fails every
  # container start ("Failed to get working directory") once that directory is deleted.
  (cd "$D" && exec setsid nohup podman system service --time=0 "unix://$SOCK" >"$D/service.log" 2>&1 </dev/null) &
  echo $! >"$D/service.pid"
  for _ in $(seq 1 150); do ping && break; sleep 0.1; done
  if ! ping; then
    say "the service did not come up; its log:"; cat "$D/service.log" >&2; exit 1
  fi
fi

# 4. The seed image, from busybox-static: no registry involved.
if ! podman image exists "$IMAGE"; then
  say "seeding $IMAGE from /bin/busybox"
  R=$D/rootfs
  rm -rf "$R"; mkdir -p "$R/bin" "$R/etc" "$R/tmp" "$R/proc" "$R/sys" "$R/dev"
  cp /bin/busybox "$R/bin/busybox"
  for a in $("$R/bin/busybox" --list); do [ "$a" = busybox ] || ln -sf busybox "$R/bin/$a"; done
  echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
  echo 'root:x:0:' >"$R/etc/group"
  tar -C "$R" -cf "$D/rootfs.tar" .
  podman import -q --change 'CMD ["/bin/sh"]' "$D/rootfs.tar" "$IMAGE" >/dev/null
  rm -rf "$R" "$D/rootfs.tar"
fi
echo "export DOCKER_HOST=unix://$SOCK"
