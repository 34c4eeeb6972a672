# A desktop image: Debian 12, Xvfb, XFCE (no screensaver, power manager or locker), a session
# bus with the AT-SPI accessibility bus, a non-root desktop user, and computer-agent from our
# .deb, all supervised by docker/entrypoint.
#
#   make deb && docker build -t computer-desktop .
#   docker run -p 8000:8000 -v ./token:/run/secrets/computer-agent-token:ro computer-desktop
#
# Builds with the classic builder (Debian 12's docker.io 20.10) and with BuildKit alike: no
# `COPY --chmod`, no `RUN --mount`, no heredocs. Build stages keep the image small: the .deb
# itself never becomes a layer of the image (it is only copied into the build stages), and the
# final image gets one layer with exactly the files installing the package made.
#
# Build args: WIDTH, HEIGHT, DISPLAY (runtime env of the same names override them),
# DEB (the package to install, default dist/computer-agent_*.deb: exactly one must match),
# BASE (the Debian 12 image to start from, default debian:12-slim).
ARG BASE=debian:12-slim

# 1. A stand-in for cpp (docker/no-cpp.control says why); its own stage, so it is rebuilt only
# when that file changes.
FROM ${BASE} AS no-cpp
COPY docker/no-cpp.control /no-cpp/DEBIAN/control
RUN dpkg-deb --root-owner-group --build /no-cpp /no-cpp.deb

# 2. The package: its dependency list, read from the .deb, is what the desktop stage installs.
FROM ${BASE} AS package
ARG DEB=dist/computer-agent_*.deb
COPY ${DEB} /pkg/
RUN set -- /pkg/*.deb \
    && if [ "$#" -ne 1 ]; then echo "DEB matched $# files ($*): pass --build-arg DEB=dist/<one>.deb" >&2; exit 1; fi \
    && mv "$1" /pkg/computer-agent.deb \
    && dpkg-deb --field /pkg/computer-agent.deb Depends > /pkg/depends

# 3. The desktop: XFCE without the pieces that blank, lock or suspend a screen nobody watches,
# plus everything the package depends on. No recommends anywhere, no C preprocessor; dpkg skips
# documentation, translations and the venv's pip and test suites (docker/dpkg-excludes).
FROM ${BASE} AS desktop

ARG WIDTH=1280
ARG HEIGHT=720
ARG DISPLAY=:1

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    WIDTH=${WIDTH} \
    HEIGHT=${HEIGHT} \
    DISPLAY=${DISPLAY} \
    SESSION=startxfce4 \
    COMPUTER_AGENT_HOST=0.0.0.0 \
    COMPUTER_AGENT_PORT=8000

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY docker/dpkg-excludes /etc/dpkg/dpkg.cfg.d/computer-desktop
COPY docker/apt-settings /etc/apt/apt.conf.d/90computer-desktop
COPY --from=no-cpp /no-cpp.deb /tmp/pkg/
COPY --from=package /pkg/depends /tmp/pkg/
# hadolint ignore=DL3008
RUN dpkg --install /tmp/pkg/no-cpp.deb \
    && apt-get update \
    && apt-get install -y --no-install-recommends \
        xvfb xauth x11-utils x11-xserver-utils xdotool xclip \
        xfce4-session xfwm4 xfce4-panel xfdesktop4 xfce4-settings xfce4-terminal thunar \
        dbus dbus-x11 at-spi2-core libatk-adaptor \
        fonts-dejavu-core fonts-noto-core fonts-noto-color-emoji \
        ca-certificates curl sudo procps \
    && apt-get satisfy -y --no-install-recommends "$(cat /tmp/pkg/depends)" \
    && apt-get purge -y --auto-remove xfce4-screensaver xfce4-power-manager light-locker \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /tmp/pkg /var/log/apt /var/log/dpkg.log \
        /var/cache/debconf/*-old /var/lib/dpkg/*-old

# 4. The agent: the .deb installed as usual (postinst runs and byte-compiles the venv), then
# every file the installation created or changed (the venv, /usr/bin/computer-agent, the units,
# /etc/computer-agent, dpkg's database) is collected in /staging for the final stage.
FROM desktop AS agent
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
COPY --from=package /pkg/computer-agent.deb /tmp/pkg/
RUN touch /tmp/installing \
    && apt-get install -y --no-install-recommends /tmp/pkg/computer-agent.deb \
    && rm -f /etc/computer-agent/token /var/lib/dpkg/*-old \
    && find / -xdev -mindepth 1 \
        \( -path /proc -o -path /sys -o -path /dev -o -path /tmp -o -path /run -o -path /root \
           -o -path /var/cache -o -path /var/log -o -path /var/lib/apt \) -prune \
        -o -cnewer /tmp/installing -print0 > /tmp/installed \
    && mkdir /staging \
    && tar --create --null --no-recursion --files-from=/tmp/installed --file=- 2>/dev/null \
        | tar --extract --directory=/staging --file=-

# 5. The image: the desktop, the package's files, the desktop user, the entrypoint.
FROM desktop

ARG DESKTOP_USER=desktop
ARG UID=1000

COPY --from=agent /staging/ /
COPY docker/entrypoint /usr/local/bin/desktop-entrypoint

# Apps, commands and the agent all run as the desktop user, never as root.
RUN chmod 0755 /usr/local/bin/desktop-entrypoint \
    && computer-agent --version \
    && useradd --create-home --uid "${UID}" --shell /bin/bash "${DESKTOP_USER}" \
    && echo "${DESKTOP_USER} ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/${DESKTOP_USER}" \
    && chmod 0440 "/etc/sudoers.d/${DESKTOP_USER}" \
    && mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix

USER ${DESKTOP_USER}
WORKDIR /home/${DESKTOP_USER}
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS http://127.0.0.1:${COMPUTER_AGENT_PORT}/health || exit 1"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/desktop-entrypoint"]
