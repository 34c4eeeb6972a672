# A desktop image: Debian 12, Xvfb, XFCE (no screensaver, power manager or locker), a session
# bus with the AT-SPI accessibility bus, a non-root desktop user, and computer-agent from our
# .deb, all supervised by docker/entrypoint.
#
#   make deb && docker build -t computer-desktop .
#   docker run -p 8000:8000 -e COMPUTER_AGENT_TOKEN=... computer-desktop
#   (or mount the token: -v ./token:/run/secrets/computer-agent-token:ro)
#
# Build args: WIDTH, HEIGHT, DISPLAY (runtime env of the same names override them),
# DEB (the package to install, default dist/computer-agent_*.deb).
FROM debian:12-slim

ARG WIDTH=1280
ARG HEIGHT=720
ARG DISPLAY=:1
ARG DEB=dist/computer-agent_*_amd64.deb
ARG DESKTOP_USER=desktop
ARG UID=1000

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    WIDTH=${WIDTH} \
    HEIGHT=${HEIGHT} \
    DISPLAY=${DISPLAY} \
    SESSION=startxfce4 \
    COMPUTER_AGENT_HOST=0.0.0.0 \
    COMPUTER_AGENT_PORT=8000

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# The desktop: XFCE without the pieces that blank, lock or suspend a screen nobody watches.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        xvfb xauth x11-utils x11-xserver-utils xdotool xclip \
        xfce4-session xfwm4 xfce4-panel xfdesktop4 xfce4-settings xfce4-terminal thunar \
        dbus dbus-x11 at-spi2-core libatk-adaptor \
        fonts-dejavu-core fonts-noto-core fonts-noto-color-emoji \
        ca-certificates curl sudo procps \
    && apt-get purge -y --auto-remove xfce4-screensaver xfce4-power-manager light-locker \
    && rm -rf /var/lib/apt/lists/*

# Our package: the venv, /usr/bin/computer-agent, the units (unused here), the token postinst makes.
COPY ${DEB} /tmp/
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends /tmp/computer-agent_*.deb \
    && rm -rf /var/lib/apt/lists/* /tmp/computer-agent_*.deb \
    && rm -f /etc/computer-agent/token

# The desktop user: apps, commands and the agent all run as this user, never as root.
RUN useradd --create-home --uid "${UID}" --shell /bin/bash "${DESKTOP_USER}" \
    && echo "${DESKTOP_USER} ALL=(ALL) NOPASSWD:ALL" > "/etc/sudoers.d/${DESKTOP_USER}" \
    && chmod 0440 "/etc/sudoers.d/${DESKTOP_USER}" \
    && mkdir -p /tmp/.X11-unix && chmod 1777 /tmp/.X11-unix

COPY --chmod=0755 docker/entrypoint /usr/local/bin/desktop-entrypoint

USER ${DESKTOP_USER}
WORKDIR /home/${DESKTOP_USER}
EXPOSE 8000

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["/bin/sh", "-c", "curl -fsS http://127.0.0.1:${COMPUTER_AGENT_PORT}/health || exit 1"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/desktop-entrypoint"]
