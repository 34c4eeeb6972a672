#!/bin/bash
# Print the path of a cached Debian 12 root filesystem for the system test, building it first if
# it is missing. Keyed by the suite, the package list and FORMAT (bump it when the way the root
# is made changes), so a changed list gets a new root and CI reruns reuse the old one. The mirror is the one apt on this machine already uses.
#
#   tests/system/rootfs.sh            -> /var/cache/computer-agent-test/rootfs-<key>
set -euo pipefail

CACHE=${COMPUTER_AGENT_TEST_CACHE:-/var/cache/computer-agent-test}
SUITE=bookworm
FORMAT=1

# What the booted machine needs with no network: systemd as PID 1 with logind and a user
# manager (linger), the package's Depends and Recommends, an X server, and the observers the
# checks use (xdotool, xprop via x11-utils, curl, ps).
PACKAGES=(
    systemd systemd-sysv dbus dbus-user-session libpam-systemd procps curl ca-certificates
    python3 python3.11 python3-gi python3-pyatspi gir1.2-atspi-2.0 at-spi2-core
    libx11-6 libxfixes3 libxrandr2 libxcb1 libxcb-randr0 libxcb-render0 libxcb-shm0 libxcb-xfixes0
    xvfb xauth xdotool x11-utils xterm
)

mirror() {
    # The URI of the first apt source (deb822 or one-line) that serves the $SUITE suite itself.
    local uri
    uri=$(awk -v suite="$SUITE" 'BEGIN { RS = "" } {
            uri = ""; found = 0
            n = split($0, lines, "\n")
            for (i = 1; i <= n; i++) {
                if (lines[i] ~ /^URIs:/) { split(lines[i], words, " "); uri = words[2] }
                if (lines[i] ~ /^Suites:/) { m = split(lines[i], words, " "); for (j = 2; j <= m; j++) if (words[j] == suite) found = 1 }
            }
            if (found && uri != "") { print uri; exit }
        }' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ]; then
        uri=$(awk -v suite="$SUITE" '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i == suite) { print ($2 ~ /^\[/ ? $3 : $2); exit } }' \
            /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

KEY=$(printf '%s\n' "$SUITE" "$FORMAT" "${PACKAGES[@]}" | sha256sum | cut -c1-16)
ROOT=$CACHE/rootfs-$KEY
if [ -f "$ROOT/.complete" ]; then
    echo "$ROOT"
    exit 0
fi

mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9
if [ ! -f "$ROOT/.complete" ]; then
    rm -rf "$ROOT.tmp"
    MIRROR=$(mirror)
    echo "debootstrap $SUITE from $MIRROR into $ROOT (cached for later runs)" >&2
    include=$(IFS=,; echo "${PACKAGES[*]}")
    debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOT.tmp" "$MIRROR" >&2 \
        || { tail -n 30 "$ROOT.tmp/debootstrap/debootstrap.log" >&2 2>/dev/null; exit 1; }
    # A machine that boots quietly in a container: no getty on the console, a hostname, no
    # network wait, apt caches emptied (the deb is installed from a file).
    echo agent-test > "$ROOT.tmp/etc/hostname"
    rm -f "$ROOT.tmp/etc/machine-id" && : > "$ROOT.tmp/etc/machine-id"
    chroot "$ROOT.tmp" systemctl mask console-getty.service getty@.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
    chroot "$ROOT.tmp" apt-get clean
    touch "$ROOT.tmp/.complete"
    # Older roots (other keys) are dead weight.
    find "$CACHE" -maxdepth 1 -name 'rootfs-*' ! -name "rootfs-$KEY*" -exec rm -rf {} +
    mv "$ROOT.tmp" "$ROOT"
fi
echo "$ROOT"
