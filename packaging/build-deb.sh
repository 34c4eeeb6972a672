#!/bin/bash
# Build dist/computer-agent_<version>_<arch>.deb from this tree (`make deb`).
#
# Why a venv and not Debian's python3-* packages: the agent needs newer aiohttp, pydantic, mss
# and friends than bookworm ships. The venv is built with Debian's own /usr/bin/python3 at a
# staging copy of its final path, with --system-site-packages so Debian's python3-gi and
# python3-pyatspi (which cannot come from PyPI) serve the accessibility code; every other
# dependency is installed inside it (--ignore-installed), so nothing depends on which python3-*
# packages happen to be on the machine. Packed with dpkg-deb; the maintainer scripts in
# packaging/debian do what dh_installsystemd(user) would (the units are not enabled: the image
# chooses the user or the system unit).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}   # Debian's interpreter, never a pyenv or venv one
BUILD=${BUILD:-$ROOT/build/deb}
DIST=${DIST:-$ROOT/dist}

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$ROOT/agent/__init__.py")
ARCH=$(dpkg --print-architecture)
PYMINOR=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
PYNEXT=$("$PYTHON" -c 'import sys; print("%d.%d" % (sys.version_info[0], sys.version_info[1] + 1))')
STAGE=$BUILD/root
PREFIX=/usr/lib/computer-agent
VENV=$STAGE$PREFIX/venv
DEB=$DIST/computer-agent_${VERSION}_${ARCH}.deb

echo "building $DEB (python $PYMINOR from $PYTHON)"
rm -rf "$BUILD"
mkdir -p "$STAGE" "$DIST"

# 1. The venv and the agent with its dependencies.
"$PYTHON" -m venv --system-site-packages "$VENV"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_COMPILE=1
"$VENV/bin/python" -m pip install -q --no-compile --no-warn-script-location pip
"$VENV/bin/python" -m pip wheel -q --no-deps -w "$BUILD/wheel" "$ROOT"
"$VENV/bin/python" -m pip install -q --no-compile --ignore-installed --no-warn-script-location \
    "$BUILD"/wheel/computer_agent-*.whl

# 2. Make it live at its final path: scripts' shebangs, activate, pyvenv.cfg name the staging dir.
grep -rlI --null -F "$STAGE" "$VENV" | xargs -0 -r sed -i "s|$STAGE||g"
if grep -rqI -F "$STAGE" "$VENV"; then
    echo "the staging path is still recorded in:" >&2
    grep -rlI -F "$STAGE" "$VENV" >&2
    exit 1
fi
# Byte code records source paths and is rebuilt by postinst; tests and caches are dead weight.
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
rm -rf "$VENV"/lib/python*/site-packages/*/tests/__pycache__

# 3. The command, the units, the config, the docs.
mkdir -p "$STAGE/usr/bin"
ln -s "$PREFIX/venv/bin/computer-agent" "$STAGE/usr/bin/computer-agent"
install -D -m 0644 "$ROOT/systemd/computer-agent-headless.service" "$STAGE/lib/systemd/system/computer-agent.service"
install -D -m 0644 "$ROOT/systemd/computer-agent.service" "$STAGE/usr/lib/systemd/user/computer-agent.service"
install -D -m 0644 "$HERE/agent.toml" "$STAGE/etc/computer-agent/agent.toml"
DOC=$STAGE/usr/share/doc/computer-agent
install -D -m 0644 "$ROOT/systemd/headless.conf.example" "$DOC/examples/headless.conf"
for doc in README.md CHANGELOG.md; do
    if [ -f "$ROOT/$doc" ]; then install -m 0644 "$ROOT/$doc" "$DOC/$doc"; fi
done
cat > "$DOC/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: computer-agent
License: Apache-2.0
Comment: The Python packages under $PREFIX/venv carry their own licenses in their dist-info folders.
EOF

# 4. Control files.
mkdir -p "$STAGE/DEBIAN"
SIZE=$(du -sk --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
    -e "s/@PYTHON@/python$PYMINOR/" -e "s/@PYMINOR@/$PYMINOR/" -e "s/@PYNEXT@/$PYNEXT/" \
    "$HERE/debian/control.in" > "$STAGE/DEBIAN/control"
install -m 0644 "$HERE/debian/conffiles" "$STAGE/DEBIAN/conffiles"
for script in postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$script" "$STAGE/DEBIAN/$script"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print0 | sort -z | xargs -0 md5sum | sed 's|  \./|  |') \
    > "$STAGE/DEBIAN/md5sums"

dpkg-deb --root-owner-group -Zgzip --build "$STAGE" "$DEB" >/dev/null
echo "$DEB ($(du -h "$DEB" | cut -f1), installed $((SIZE / 1024)) MiB)"
