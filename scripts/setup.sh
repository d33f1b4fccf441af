#!/usr/bin/env bash
# Installs everything trajscope's demo and tests need on a fresh Debian machine.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages: offscreen MuJoCo rendering (pixel observations, video), the headless
# browser the viewer tests drive, and the SSH server the sftp:// tests run on 127.0.0.1.
APT_PACKAGES=(libosmesa6 libegl1 libegl-mesa0 libgl1 libgl1-mesa-dri chromium openssh-server)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
$PY -m pip install -q --disable-pip-version-check -e ".[jax,playground,gym,analysis,video,dashboards,remote,distributed,dev]"
