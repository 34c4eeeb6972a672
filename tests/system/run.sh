#!/bin/bash
# The system test (`make test-system`): the .deb under a real systemd, as an operator runs it.
#
# Builds the package twice (byte-identical, finding 6), lints it (finding 8), builds a higher
# version from a copy of the tree, boots a cached debootstrap Debian 12 root as PID 1 systemd
# under `systemd-nspawn -b --register=no --keep-unit --private-network` (a fresh overlay on it
# each run), and checks, through systemctl, journalctl, /proc and the API inside the machine:
#   READY=1 and STATUS=; commands run as the desktop user; systemd-analyze security <= 5.0 (8);
#   journal priorities from log levels (5); a launched app in its own scope surviving an agent
#   restart, the watchdog (SIGSTOP), kill -9 and the upgrade (2); restart after kill -9; an
#   unattended upgrade to the higher version with an edited config that never prompts (3);
#   enable state kept by the upgrade, purge leaving nothing, a reinstall coming back disabled (4).
# Exits 0 with "SKIP: <reason>" where this machine cannot boot a container.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
WORK=${WORK:-$(mktemp -d /var/tmp/computer-agent-system.XXXXXX)}
LOG=$WORK/log
MACHINE=agent-system-$$
STARTED=$(date +%s)
FAILED=0
NSPAWN_PID=

say() { echo "[$(($(date +%s) - STARTED))s] $*"; }
pass() { say "PASS $*"; }
fail() { say "FAIL $*"; FAILED=$((FAILED + 1)); }
check() {  # check "<finding: what>" command...
    local what=$1
    shift
    if "$@" >>"$LOG" 2>&1; then pass "$what"; else fail "$what"; fi
}
skip() { echo "SKIP: $*"; exit 0; }

[ "$(id -u)" = 0 ] || skip "needs root (debootstrap, systemd-nspawn)"
for tool in systemd-nspawn debootstrap lintian nsenter dpkg-deb; do
    command -v "$tool" >/dev/null || skip "$tool is not installed (make test-system installs it)"
done
[ -d /sys/fs/cgroup ] || skip "no cgroup file system: systemd cannot boot in a container here"

mkdir -p "$WORK"
: >"$LOG"
cleanup() {
    if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        kill -TERM "$NSPAWN_PID" 2>/dev/null || true   # nspawn asks the machine to power off
        for _ in $(seq 60); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$NSPAWN_PID" 2>/dev/null || true
        wait "$NSPAWN_PID" 2>/dev/null || true
    fi
    if mountpoint -q "$WORK/merged" 2>/dev/null; then umount "$WORK/merged" || umount -l "$WORK/merged"; fi
    if [ "$FAILED" = 0 ] && [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "log and machine: $WORK"; fi
}
trap cleanup EXIT

# --- the packages ----------------------------------------------------------------------------
# One time stamp for every build of this run (a commit landing meanwhile must not change it).
SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
export SOURCE_DATE_EPOCH
VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/agent/__init__.py")
NEXT="$VERSION+systemtest1"
ARCH=$(dpkg --print-architecture)
say "building computer-agent $VERSION twice, $NEXT once and the last conffile release (log: $LOG)"
BUILD=$WORK/build-a DIST=$WORK/a bash "$ROOT/packaging/build-deb.sh" >>"$LOG" 2>&1
BUILD=$WORK/build-b DIST=$WORK/b bash "$ROOT/packaging/build-deb.sh" >>"$LOG" 2>&1
DEB=$WORK/a/computer-agent_${VERSION}_$ARCH.deb
check "6: two builds of one tree are byte-identical" cmp "$DEB" "$WORK/b/computer-agent_${VERSION}_$ARCH.deb"
check "6: no build path in direct_url.json (none shipped)" bash -c "! dpkg-deb -c '$DEB' | grep direct_url.json"
check "6: the dist-info version is the package version" \
    bash -c "dpkg-deb -c '$DEB' | grep 'site-packages/computer_agent-$VERSION.dist-info/METADATA'"
check "6: pyproject.toml has no version of its own" \
    python3 -c "import tomllib, sys; p = tomllib.load(open(sys.argv[1], 'rb'))['project']; sys.exit('version' in p or 'version' not in p['dynamic'])" "$ROOT/pyproject.toml"
check "3: no conffiles (nothing for an upgrade to ask about)" bash -c "[ -z \"\$(dpkg-deb -f '$DEB' Conffiles)\" ] && ! dpkg-deb --ctrl-tarfile '$DEB' | tar -t | grep conffiles"
check "8: lintian reports no error or warning (overrides documented)" \
    lintian --fail-on error,warning --tag-display-limit 0 "$DEB"
rm -rf "$WORK/build-a" "$WORK/build-b" "$WORK/b"
# The upgrade: the same tree, a higher version (written where the version lives).
mkdir -p "$WORK/next"
tar -C "$ROOT" -c pyproject.toml README.md CHANGELOG.md agent packaging systemd | tar -C "$WORK/next" -x
sed -i "s/^__version__ = .*/__version__ = \"$NEXT\"/" "$WORK/next/agent/__init__.py"
BUILD=$WORK/build-next DIST=$WORK/next-dist bash "$WORK/next/packaging/build-deb.sh" >>"$LOG" 2>&1
NEXT_DEB=$WORK/next-dist/computer-agent_${NEXT}_$ARCH.deb
rm -rf "$WORK/build-next" "$WORK/next"
# The last release whose /etc/computer-agent/agent.toml was a conffile (the parent of the commit
# that removed packaging/debian/conffiles), for the upgrade an existing installation makes.
OLD_DEB=
OLD_REF=$(git -C "$ROOT" rev-list -1 HEAD -- packaging/debian/conffiles 2>/dev/null || true)
if [ -n "$OLD_REF" ] && mkdir -p "$WORK/old" && git -C "$ROOT" archive "$OLD_REF^" | tar -C "$WORK/old" -x 2>>"$LOG" \
    && BUILD=$WORK/build-old DIST=$WORK/old-dist bash "$WORK/old/packaging/build-deb.sh" >>"$LOG" 2>&1; then
    OLD_DEB=$WORK/old-dist/old-release.deb
    mv "$WORK"/old-dist/computer-agent_*.deb "$OLD_DEB"
else
    say "SKIP the upgrade from the conffile release: its commit is not in this clone"
fi
rm -rf "$WORK/build-old" "$WORK/old"

# --- the machine -----------------------------------------------------------------------------
ROOTFS=$(bash "$HERE/rootfs.sh")
# The machine runs Xvfb and keeps both cores busy: one at a time with the other Xvfb tests.
exec 8>"${LOCK:-/tmp/agent-xtest.lock}"
say "waiting for ${LOCK:-/tmp/agent-xtest.lock}"
flock 8
mkdir -p "$WORK/upper" "$WORK/work" "$WORK/merged"
mount -t overlay overlay -o "lowerdir=$ROOTFS,upperdir=$WORK/upper,workdir=$WORK/work" "$WORK/merged"
mkdir -p "$WORK/merged/var/tmp/debs"
cp "$DEB" "$NEXT_DEB" ${OLD_DEB:+"$OLD_DEB"} "$WORK/merged/var/tmp/debs/"
say "booting $ROOTFS (overlay) as $MACHINE"
systemd-nspawn -q -b -D "$WORK/merged" -M "$MACHINE" --register=no --keep-unit --private-network \
    >"$WORK/console" 2>&1 </dev/null &
NSPAWN_PID=$!

descends_from_nspawn() {  # the process's ancestors include our systemd-nspawn
    local pid=$1
    while [ "$pid" -gt 1 ]; do
        [ "$pid" = "$NSPAWN_PID" ] && return 0
        pid=$(awk '/^PPid/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
    done
    return 1
}
LEADER=
for _ in $(seq 100); do
    for pid in $(pgrep -x systemd); do
        if [ "$(awk '/^NSpid/ {print $NF}' "/proc/$pid/status" 2>/dev/null)" = 1 ] && descends_from_nspawn "$pid"; then
            LEADER=$pid
        fi
    done
    [ -n "$LEADER" ] && break
    kill -0 "$NSPAWN_PID" 2>/dev/null || break
    sleep 0.2
done
if [ -z "$LEADER" ]; then
    cat "$WORK/console" >&2
    skip "systemd-nspawn could not boot a container on this machine (console above)"
fi

ct() {  # run a command inside the machine
    nsenter --target "$LEADER" --mount --uts --ipc --net --pid --root --wd=/ -- \
        /usr/bin/env -i -C / PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 "$@"
}
export LEADER
export -f ct
state=
for _ in $(seq 240); do  # the manager's socket appears a moment after systemd starts
    state=$(ct timeout 120 systemctl is-system-running --wait 2>/dev/null || true)
    case "$state" in running|degraded|maintenance|stopping|offline) break ;; esac
    sleep 0.5
done
say "booted: $state"
case "$state" in running|degraded) ;; *) cat "$WORK/console" >&2; fail "the machine booted ($state)"; exit 1 ;; esac

api() {  # api METHOD PATH [JSON]: the body, inside the machine, with the token
    # shellcheck disable=SC2016  # expanded by the machine's sh
    ct sh -c 'curl -sS -m 20 -X "$1" -H "Authorization: Bearer $(cat /etc/computer-agent/token)" \
        -H "Content-Type: application/json" ${3:+--data "$3"} "http://127.0.0.1:8000$2"' api "$@"
}
prop() { ct systemctl show -P "$2" "$1"; }
export -f prop
wait_ready() {  # wait_ready [port]: the unit active (READY=1 seen) and /ready answering 200
    local port=${1:-8000}
    for _ in $(seq 120); do
        if [ "$(prop computer-agent.service ActiveState)" = active ] \
            && ct curl -fsS -m 2 -o /dev/null -H "Authorization: Bearer $(ct cat /etc/computer-agent/token)" \
                "http://127.0.0.1:$port/ready" 2>/dev/null; then
            return 0
        fi
        sleep 0.5
    done
    return 1
}
restarted() {  # restarted OLD_PID: a new main PID, active again
    local old=$1
    for _ in $(seq 180); do
        local now
        now=$(prop computer-agent.service MainPID)
        if [ "$now" != 0 ] && [ "$now" != "$old" ] && wait_ready 8000; then return 0; fi
        sleep 0.5
    done
    return 1
}
alive() { ct test -d "/proc/$1"; }

# --- install as docs/deployment.md says ------------------------------------------------------
ct sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/debs/$(basename "$DEB") </dev/null" >>"$LOG" 2>&1 \
    || { fail "install the package"; exit 1; }
check "4: a fresh install enables nothing" bash -c "[ \"\$(ct systemctl is-enabled computer-agent.service)\" = disabled ]"
ct useradd --create-home --uid 1000 --shell /bin/bash desktop
ct loginctl enable-linger desktop >>"$LOG" 2>&1 || true
ct sh -c 'printf "host = \"127.0.0.1\"\n" > /etc/computer-agent/agent.d/50-site.toml'
ct systemctl enable --now computer-agent-xvfb.service computer-agent.service >>"$LOG" 2>&1
check "READY=1: the unit is active and /ready answers 200" wait_ready 8000
status=$(prop computer-agent.service StatusText)
say "StatusText: $status"
check "STATUS= is the readiness verdict" bash -c "[[ '$status' == ready* ]]"
check "8: the system unit runs the agent as root" bash -c "[ \"\$(ct ps -o user= -p $(prop computer-agent.service MainPID))\" = root ]"
uid=$(api POST /exec '{"command": ["id", "-u"]}' | ct python3 -c 'import json,sys; print(json.load(sys.stdin)["stdout"].strip())' || true)
check "8: commands run as the desktop user (uid 1000, got $uid)" test "$uid" = 1000
# Commands (issue 11, finding 8): each in a cgroup of its own below the unit's delegated one; a
# timeout ends the whole cgroup, a setsid grandchild included.
ct rm -f /tmp/escaped
api POST /exec '{"command": "cat /proc/self/cgroup; setsid sh -c \"sleep 300 & echo \\$! > /tmp/escaped\"; sleep 100", "timeout_seconds": 2}' \
    >"$WORK/escape.json" || true
echo "escape: $(cat "$WORK/escape.json")" >>"$LOG"
ct journalctl -u computer-agent --no-pager -o cat | grep -i cgroup >>"$LOG" || true
check "8: a command runs in a cgroup of its own below the unit's" \
    bash -c "python3 -c 'import json,sys; print(json.load(sys.stdin)[\"stdout\"])' <'$WORK/escape.json' | grep -q 'computer-agent.service/.*cmd-'"
escaped=$(ct cat /tmp/escaped 2>/dev/null || true)
gone() {  # gone PID: no such process in the machine within 5 s (a zombie awaiting its reaper counts)
    for _ in $(seq 50); do
        ct test -d "/proc/$1" || return 0
        # shellcheck disable=SC2016  # awk's own $3
        [ "$(ct awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ] && return 0
        sleep 0.1
    done
    return 1
}
export -f gone
{ echo "escaped process:"; ct ps -o pid,ppid,stat,user,args -p "${escaped:-1}"; ct cat "/proc/${escaped:-1}/cgroup"; } >>"$LOG" 2>&1 || true
check "8: the timed-out command's setsid child (pid ${escaped:-none}) died with it" \
    bash -c "[ -n '$escaped' ] && gone $escaped"
# shellcheck disable=SC2016  # expanded by the machine's sh
shot=$(ct sh -c 'curl -sS -m 30 -H "Authorization: Bearer $(cat /etc/computer-agent/token)" http://127.0.0.1:8000/desktop/screenshot | head -c 8 | od -An -c' || true)
check "the installed agent takes a screenshot of :99 (Pillow, ISA-L, mss load from the venv; got: $shot)" \
    bash -c "[[ '$shot' == *P*N*G* ]]"
ct systemd-analyze security computer-agent.service >>"$LOG" 2>&1 || true
score=$(ct systemd-analyze security computer-agent.service 2>/dev/null | sed -n 's/.*Overall exposure level for computer-agent.service: \([0-9.]*\).*/\1/p')
check "8: systemd-analyze security computer-agent.service is $score (<= 5.0)" \
    python3 -c "import sys; sys.exit(0 if float('${score:-99}') <= 5.0 else 1)"
check "8: systemd-analyze verify on the installed units (no man-db in the test root: --man=no)" \
    ct systemd-analyze verify --man=no /lib/systemd/system/computer-agent.service /lib/systemd/system/computer-agent-xvfb.service

# Journal priorities (5): "listening" is info (6); a display that goes away is a warning (4).
ct systemctl stop computer-agent-xvfb.service
sleep 3
ct systemctl start computer-agent-xvfb.service
wait_ready 8000 || true
check "5: info lines have PRIORITY=6" bash -c "ct journalctl -u computer-agent -o json --no-pager | grep '\"listening on' | grep -q '\"PRIORITY\":\"6\"'"
check "5: journalctl -p warning shows the lost display" bash -c "ct journalctl -u computer-agent -p warning --no-pager -o cat | grep -q '\"level\": \"warning\"'"
check "5: journalctl -p warning hides info lines" bash -c "! ct journalctl -u computer-agent -p warning --no-pager -o cat | grep -q '\"level\": \"info\"'"

# A launched app (2): its own scope, the desktop user's, and it outlives every agent restart.
launched=$(api POST /desktop/launch '{"app": "xterm -title system-test", "wait_for_window": true, "timeout": 20}')
echo "launch: $launched" >>"$LOG"
APP=$(echo "$launched" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("pid", ""))' || true)
check "2: the app was launched (pid ${APP:-none})" test -n "$APP"
APP=${APP:-0}
check "2: the app runs as the desktop user" bash -c "[ \"\$(ct ps -o uid= -p $APP | tr -d ' ')\" = 1000 ]"
check "2: the app is in a scope of its own, not the agent's cgroup" \
    bash -c "ct cat /proc/$APP/cgroup | grep -q 'app-computer_agent-xterm-$APP.scope' && ! ct cat /proc/$APP/cgroup | grep -q computer-agent.service"
old=$(prop computer-agent.service MainPID)
ct systemctl restart computer-agent.service
check "2: the agent restarted" restarted "$old"
check "2: the app survived systemctl restart" alive "$APP"

# Restart after kill -9.
old=$(prop computer-agent.service MainPID)
restarts=$(prop computer-agent.service NRestarts)
ct kill -KILL "$old"
check "restart after kill -9" restarted "$old"
check "restart after kill -9 counted (NRestarts $restarts -> $(prop computer-agent.service NRestarts))" \
    test "$(prop computer-agent.service NRestarts)" -gt "$restarts"
check "2: the app survived kill -9 of the agent" alive "$APP"

# The watchdog: a stopped agent misses WATCHDOG=1 for WatchdogSec (30 s) and is restarted.
old=$(prop computer-agent.service MainPID)
ct kill -STOP "$old"
say "agent $old stopped with SIGSTOP; waiting for the watchdog (WatchdogSec=$(prop computer-agent.service WatchdogUSec))"
check "the watchdog restarted a SIGSTOPped agent" restarted "$old"
check "the journal says it was the watchdog" bash -c "ct journalctl -u computer-agent --no-pager | grep -qi 'watchdog timeout'"
check "2: the app survived the watchdog restart" alive "$APP"

# Unattended upgrade (3) with an edited config, to the higher version; the enable state stays (4).
ct systemctl --global enable computer-agent.service >>"$LOG" 2>&1
ct sh -c 'printf "host = \"127.0.0.1\"\nport = 8001\nlog_level = \"debug\"\n" > /etc/computer-agent/agent.d/50-site.toml'
old=$(prop computer-agent.service MainPID)
check "3: DEBIAN_FRONTEND=noninteractive apt-get install -y new.deb </dev/null succeeds" \
    ct sh -c "DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q /var/tmp/debs/$(basename "$NEXT_DEB") </dev/null"
check "3: the package is configured at $NEXT" \
    bash -c "[ \"\$(ct dpkg-query -W -f='\${Status} \${Version}' computer-agent)\" = 'install ok installed $NEXT' ]"
check "3: the upgrade restarted the agent" bash -c "[ \"\$(ct systemctl show -P MainPID computer-agent.service)\" != $old ]"
check "3: the new agent serves the edited config (port 8001)" wait_ready 8001
health=$(ct curl -sS -m 5 http://127.0.0.1:8001/health || true)
check "3: /health reports $NEXT" bash -c "[[ '$health' == *'\"version\": \"$NEXT\"'* || '$health' == *'\"version\":\"$NEXT\"'* ]]"
check "3: no .dpkg-new/.dpkg-old/.dpkg-dist files" bash -c "[ -z \"\$(ct find /etc -name '*.dpkg-*')\" ]"
check "4: the upgrade kept the units enabled" \
    bash -c "[ \"\$(ct systemctl is-enabled computer-agent.service computer-agent-xvfb.service | sort -u)\" = enabled ]"
check "2: the app survived the upgrade" alive "$APP"

# Purge (4): nothing left; a reinstall comes back disabled.
ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q computer-agent </dev/null' >>"$LOG" 2>&1
leftovers=$(ct sh -c 'find / -xdev \( -path /proc -o -path /sys -o -path /var/tmp/debs -o -path /var/log/journal -o -path /home/desktop/.local \) -prune -o -name "*computer-agent*" -print' || true)
echo "left after purge: $leftovers" >>"$LOG"
check "4: purge leaves no file, link or state named computer-agent (found: ${leftovers:-none})" test -z "$leftovers"
check "4: purge removed /etc/computer-agent" bash -c "! ct test -e /etc/computer-agent"
check "4: purge left dpkg no record" bash -c "! ct dpkg-query -W computer-agent"
ct sh -c "DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/debs/$(basename "$NEXT_DEB") </dev/null" >>"$LOG" 2>&1
check "4: a reinstall after purge comes back disabled" \
    bash -c "[ \"\$(ct systemctl is-enabled computer-agent.service computer-agent-xvfb.service | sort -u)\" = disabled ]"
check "4: a reinstall after purge is not enabled for users" bash -c "! ct test -e /etc/systemd/user/graphical-session.target.wants/computer-agent.service"

# Upgrade from the release with the conffile (3): an edited agent.toml moves into agent.d, unasked.
if [ -n "$OLD_DEB" ]; then
    ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get purge -y -q computer-agent </dev/null' >>"$LOG" 2>&1
    ct sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/debs/old-release.deb </dev/null' >>"$LOG" 2>&1
    ct sed -i 's/^port = .*/port = 8002/' /etc/computer-agent/agent.toml
    check "3: from the conffile release with an edited agent.toml, the unattended upgrade succeeds" \
        ct sh -c "DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q /var/tmp/debs/$(basename "$NEXT_DEB") </dev/null"
    check "3: the edit now lives in agent.d/00-agent.toml" ct grep -q '^port = 8002' /etc/computer-agent/agent.d/00-agent.toml
    check "3: /etc/computer-agent/agent.toml is gone, no .dpkg-* file left" \
        bash -c "! ct test -e /etc/computer-agent/agent.toml && [ -z \"\$(ct find /etc -name '*.dpkg-*')\" ]"
    ct systemctl start --no-block computer-agent-xvfb.service computer-agent.service
    check "3: the agent serves the migrated setting (port 8002)" wait_ready 8002
fi

say "done in $(($(date +%s) - STARTED)) s: $FAILED failed"
[ "$FAILED" = 0 ]
