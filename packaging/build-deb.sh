#!/bin/bash
# Build dist/computer-agent_<version>_<arch>.deb from this tree (`make deb`).
#
# Why a venv and not Debian's python3-* packages: the agent needs newer aiohttp, pydantic, mss
# and friends than bookworm ships. The venv is made by Debian's own /usr/bin/python3 at a
# staging copy of its final path, with --system-site-packages so Debian's python3-gi and
# python3-pyatspi (which cannot come from PyPI) serve the accessibility code; every other
# dependency is installed inside it (--ignore-installed), so nothing depends on which python3-*
# packages happen to be on the machine.
#
# Reproducible: the dependencies are exactly packaging/requirements.lock (versions and sha256
# hashes; `make lock` rewrites it), the agent's wheel is built by the setuptools/wheel of
# packaging/build.lock, sdists (none since pynput went; the step stays for any) are compiled at a fixed path with the build directory
# mapped away and no debug information, every file's time is SOURCE_DATE_EPOCH (the last commit's), and the
# venv carries no pip, no direct_url.json and no byte code (postinst compiles it). Building
# twice gives the same bytes (the system test checks). The version is agent/__init__.py's.
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
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
    SOURCE_DATE_EPOCH=$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || stat -c %Y "$ROOT/agent/__init__.py")
fi
export SOURCE_DATE_EPOCH
STAGE=$BUILD/root
PREFIX=/usr/lib/computer-agent
VENV=$STAGE$PREFIX/venv
TOOLS=$BUILD/tools
WHEELS=$BUILD/wheels
DEB=$DIST/computer-agent_${VERSION}_${ARCH}.deb

echo "building $DEB (python $PYMINOR from $PYTHON, SOURCE_DATE_EPOCH=$SOURCE_DATE_EPOCH)"
rm -rf "$BUILD"
mkdir -p "$STAGE" "$DIST" "$WHEELS" "$BUILD/sdist" "$BUILD/src"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_COMPILE=1 PYTHONHASHSEED=0
# What we compile ourselves (sdists) carries no debug information and no build path.
export CFLAGS="-O2 -g0 -ffile-prefix-map=$BUILD=/build" LDFLAGS="-s"

# 1. Build tools from the lock; every run-time dependency downloaded and hash-checked.
"$PYTHON" -m venv "$TOOLS"
"$TOOLS/bin/python" -m pip install -q --no-deps --require-hashes -r "$HERE/build.lock"
"$TOOLS/bin/python" -m pip download -q --no-deps --require-hashes --no-build-isolation \
    -d "$WHEELS" -r "$HERE/requirements.lock"
for sdist in "$WHEELS"/*.tar.gz; do
    [ -e "$sdist" ] || continue
    tar -C "$BUILD/sdist" -xzf "$sdist"
    rm "$sdist"
done
for source in "$BUILD"/sdist/*/; do
    [ -d "$source" ] || continue
    "$TOOLS/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "$source"
done
# The agent itself, from a clean copy (no stale build/ or egg-info of the working tree).
cp -a "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/agent" "$BUILD/src/"
find "$BUILD/src" -depth -name __pycache__ -exec rm -rf {} +
"$TOOLS/bin/python" -m pip wheel -q --no-deps --no-build-isolation -w "$WHEELS" "$BUILD/src"

# 2. The venv: installed by name from the checked wheels (so pip records no direct_url.json).
"$PYTHON" -m venv --system-site-packages --without-pip "$VENV"
sed -e 's/ --hash=.*//' -e '/^#/d' "$HERE/requirements.lock" > "$BUILD/names.txt"
echo "computer-agent==$VERSION" >> "$BUILD/names.txt"
"$TOOLS/bin/python" -m pip --python "$VENV/bin/python" install -q --no-index --find-links "$WHEELS" \
    --no-deps --ignore-installed --no-compile --no-warn-script-location -r "$BUILD/names.txt"
installed=$("$VENV/bin/python" -I -c 'import importlib.metadata as m; print(m.version("computer-agent"))')
if [ "$installed" != "$VERSION" ]; then
    echo "the venv holds computer-agent $installed, not $VERSION" >&2
    exit 1
fi

# 3. Make it live at its final path: scripts' shebangs, activate, pyvenv.cfg name the staging dir.
grep -rlI --null -F "$STAGE" "$VENV" | xargs -0 -r sed -i "s|$STAGE||g"
if grep -rlF -e "$STAGE" -e "$BUILD" "$VENV"; then
    echo "the build path is still recorded in the files above" >&2
    exit 1
fi
# Byte code records source paths and is rebuilt by postinst; caches and debug symbols
# are dead weight; a library is data (0644), not a program.
find "$VENV" -depth -type d -name __pycache__ -exec rm -rf {} +
# (The wheels' own objects are left as PyPI built them: stripping the libraries auditwheel
# patched with patchelf breaks them, "ELF load command address/offset not page-aligned".)
find "$VENV" -type f -name '*.so*' -exec chmod 0644 {} +
# Only the agent's own command; the dependencies' scripts (f2py, mss, ...) are not for users.
find "$VENV/bin" -maxdepth 1 -type f ! -name computer-agent ! -name activate -delete
# The interpreter links relative, so the tree means the same wherever it is unpacked.
for link in "$VENV"/bin/python*; do
    if [ -L "$link" ] && [ "$(readlink "$link")" = "$PYTHON" ] && [ "${PYTHON%/*}" = /usr/bin ]; then
        ln -sfn "../../../../bin/${PYTHON##*/}" "$link"
    fi
done
# Each RECORD lists what pip wrote, with hashes taken before the edits above (staging paths in
# scripts, stripping, deletions): list what is there now, as it is now.
"$PYTHON" - "$VENV" <<'PY'
import base64, csv, hashlib, io, pathlib, sys

for record in pathlib.Path(sys.argv[1]).glob("lib/python*/site-packages/*.dist-info/RECORD"):
    site = record.parent.parent
    rows = []
    for row in csv.reader(io.StringIO(record.read_text())):
        path = (site / row[0]).resolve() if row else None
        if path is None or not path.is_file():
            continue
        if row[1]:
            data = path.read_bytes()
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            row = [row[0], f"sha256={digest}", str(len(data))]
        rows.append(row)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    record.write_text(out.getvalue())
PY

# 4. The command, the units, the defaults, the docs.
mkdir -p "$STAGE/usr/bin" "$STAGE/etc/computer-agent/agent.d"
ln -s "../lib/computer-agent/venv/bin/computer-agent" "$STAGE/usr/bin/computer-agent"
install -D -m 0644 "$ROOT/systemd/computer-agent-headless.service" "$STAGE/lib/systemd/system/computer-agent.service"
install -D -m 0644 "$ROOT/systemd/computer-agent-xvfb.service" "$STAGE/lib/systemd/system/computer-agent-xvfb.service"
install -D -m 0644 "$ROOT/systemd/computer-agent.service" "$STAGE/usr/lib/systemd/user/computer-agent.service"
install -D -m 0644 "$HERE/agent.toml" "$STAGE/usr/share/computer-agent/agent.toml"
install -D -m 0644 "$HERE/headless.toml" "$STAGE/usr/share/computer-agent/headless.toml"
install -D -m 0644 "$HERE/lintian-overrides" "$STAGE/usr/share/lintian/overrides/computer-agent"
DOC=$STAGE/usr/share/doc/computer-agent
install -D -m 0644 "$ROOT/systemd/site.toml.example" "$DOC/examples/site.toml"
for doc in README.md CHANGELOG.md; do
    if [ -f "$ROOT/$doc" ]; then install -m 0644 "$ROOT/$doc" "$DOC/$doc" && gzip -9n "$DOC/$doc"; fi
done
install -D -m 0644 "$HERE/computer-agent.1" "$STAGE/usr/share/man/man1/computer-agent.1"
gzip -9n "$STAGE/usr/share/man/man1/computer-agent.1"
DATE=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
printf 'computer-agent (%s) unstable; urgency=medium\n\n  * Release %s; see CHANGELOG.md.gz.\n\n -- %s  %s\n' \
    "$VERSION" "$VERSION" "computer-agent developers <computer-agent@example.org>" "$DATE" \
    | gzip -9n > "$DOC/changelog.gz"
install -m 0644 "$HERE/debian/copyright" "$DOC/copyright"

# 5. Control files.
mkdir -p "$STAGE/DEBIAN"
SIZE=$(du -sk --apparent-size --exclude=DEBIAN "$STAGE" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$SIZE/" \
    -e "s/@PYTHON@/python$PYMINOR/" -e "s/@PYMINOR@/$PYMINOR/" -e "s/@PYNEXT@/$PYNEXT/" \
    "$HERE/debian/control.in" > "$STAGE/DEBIAN/control"
for script in preinst postinst prerm postrm; do
    install -m 0755 "$HERE/debian/$script" "$STAGE/DEBIAN/$script"
done
(cd "$STAGE" && find . -path ./DEBIAN -prune -o -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum | sed 's|  \./|  |') \
    > "$STAGE/DEBIAN/md5sums"
chmod 0644 "$STAGE/DEBIAN/md5sums" "$STAGE/DEBIAN/control"

# 6. Same bytes every time: one time stamp, no group/other write bits from the umask.
find "$STAGE" -exec touch --no-dereference --date="@$SOURCE_DATE_EPOCH" {} +
chmod -R go-w "$STAGE"
dpkg-deb --root-owner-group -Zxz --build "$STAGE" "$DEB" >/dev/null
echo "$DEB ($(du -h "$DEB" | cut -f1), installed $((SIZE / 1024)) MiB, sha256 $(sha256sum "$DEB" | cut -c1-16))"
