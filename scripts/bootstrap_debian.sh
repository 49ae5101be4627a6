#!/usr/bin/env bash
# Installs the Debian packages Barrio needs, only when one is missing, so a second
# run costs a few dpkg queries. Uses sudo when not root.
set -euo pipefail

packages=(
  postgresql-15 postgresql-15-postgis-3 postgis   # local PostGIS server
  gdal-bin libgdal32 libgeos-c1v5 libproj25       # GeoDjango finds these through ctypes
  gettext                                         # compilemessages (Spanish/English)
  chromium fonts-dejavu-core                      # browser tests and screenshots
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "Need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "Installing Debian packages: ${missing[*]}"
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
