#!/bin/sh
# The Debian packages of announcer's images (container/Containerfile, ha-addon/announcer/Dockerfile):
#   python3 python3-venv  the interpreter and the venv announcer lives in (/opt/announcer)
#   libportaudio2         PortAudio, for `sounddevice` speakers (ALSA devices: --device /dev/snd)
#   libpulse0 + ALSA's pulse plugin: the ALSA device `pulse` (and Home Assistant's asound.conf) to
#                         PulseAudio/PipeWire through a socket. Only the plugin's files are taken from
#                         libasound2-plugins: the package itself pulls in FFmpeg's codecs (about
#                         240 MB) for plugins announcer never uses.
#   ca-certificates tzdata  TLS to the broker; IANA time zones for quiet hours
#   tini                  PID 1 of the container image: forwards SIGTERM (drain) and SIGHUP (reload)
set -eu
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
    python3 python3-venv libportaudio2 libpulse0 ca-certificates tzdata tini
cd /tmp
apt-get download libasound2-plugins
dpkg-deb -x libasound2-plugins_*.deb /tmp/alsa-plugins
for f in /tmp/alsa-plugins/usr/lib/*/alsa-lib/libasound_module_*_pulse.so \
    /tmp/alsa-plugins/usr/share/alsa/alsa.conf.d/50-pulseaudio.conf; do
    install -D -m 0644 "$f" "${f#/tmp/alsa-plugins}"
done
mkdir -p /etc/alsa/conf.d
ln -sf /usr/share/alsa/alsa.conf.d/50-pulseaudio.conf /etc/alsa/conf.d/50-pulseaudio.conf
rm -rf /tmp/alsa-plugins /tmp/*.deb /var/lib/apt/lists/* /var/cache/apt/*.bin
