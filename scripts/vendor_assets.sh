#!/usr/bin/env bash
# Vendor front-end libraries from npm into static/vendor/<lib>-<version>/.
#
# npm runs in a temporary directory (a copy of package.json/package-lock.json),
# so node_modules/ never lands in the checkout. Only the needed dist files and
# each package's LICENSE are copied; source maps (*.map) are skipped.
#
# Usage: bash scripts/vendor_assets.sh      (or: npm run vendor)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/static/vendor"

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

cp "$ROOT/package.json" "$WORK/"
if [[ -f "$ROOT/package-lock.json" ]]; then
    cp "$ROOT/package-lock.json" "$WORK/"
    (cd "$WORK" && npm ci --ignore-scripts --no-audit --no-fund)
else
    (cd "$WORK" && npm install --ignore-scripts --no-audit --no-fund --save-exact)
    cp "$WORK/package-lock.json" "$ROOT/package-lock.json"
    echo "wrote $ROOT/package-lock.json"
fi

NM="$WORK/node_modules"

# Installed version of a package (read from its own package.json).
pkg_version() {
    node -p "require('$NM/$1/package.json').version"
}

# copy_files <pkg> <target-dir-name> <src-relative-path>...
# Copies each listed file (relative to the package root) into the target dir,
# flattening the path to its basename.
copy_files() {
    local pkg="$1" target="$2"
    shift 2
    local f
    for f in "$@"; do
        if [[ ! -f "$NM/$pkg/$f" ]]; then
            echo "error: $pkg: missing $f" >&2
            exit 1
        fi
        cp "$NM/$pkg/$f" "$target/"
    done
}

# copy_license <pkg> <target-dir>: copy *LICENSE* / *LICENCE* files from the
# package root (leaflet.markercluster ships MIT-LICENCE.txt, ol LICENSE.md).
copy_license() {
    local pkg="$1" target="$2" found=0 f
    for f in "$NM/$pkg"/*LICEN[CS]E*; do
        [[ -f "$f" ]] || continue
        cp "$f" "$target/"
        found=1
    done
    if [[ "$found" -eq 0 ]]; then
        echo "error: $pkg: no LICENSE file found" >&2
        exit 1
    fi
}

# prepare <pkg> <short-name>: echo a fresh target directory for <short-name>-<version>.
prepare() {
    local pkg="$1" name="$2" version target
    version="$(pkg_version "$pkg")"
    target="$DEST/$name-$version"
    rm -rf "$target"
    mkdir -p "$target"
    echo "$target"
}

mkdir -p "$DEST"

# Leaflet
t="$(prepare leaflet leaflet)"
copy_files leaflet "$t" dist/leaflet.js dist/leaflet.css
mkdir -p "$t/images"
cp "$NM/leaflet/dist/images/"*.png "$t/images/"
copy_license leaflet "$t"

# Leaflet.markercluster
t="$(prepare leaflet.markercluster leaflet.markercluster)"
copy_files leaflet.markercluster "$t" \
    dist/leaflet.markercluster.js dist/MarkerCluster.css dist/MarkerCluster.Default.css
copy_license leaflet.markercluster "$t"

# Leaflet.heat
t="$(prepare leaflet.heat leaflet.heat)"
copy_files leaflet.heat "$t" dist/leaflet-heat.js
copy_license leaflet.heat "$t"

# Leaflet-Geoman (free)
t="$(prepare @geoman-io/leaflet-geoman-free leaflet-geoman-free)"
copy_files @geoman-io/leaflet-geoman-free "$t" \
    dist/leaflet-geoman.min.js dist/leaflet-geoman.css
copy_license @geoman-io/leaflet-geoman-free "$t"

# protomaps-leaflet: draws the self-hosted PMTiles base map (its IIFE build, global
# protomapsL, with pmtiles.js and its default styles bundled in).
t="$(prepare protomaps-leaflet protomaps-leaflet)"
copy_files protomaps-leaflet "$t" dist/protomaps-leaflet.js
copy_license protomaps-leaflet "$t"

# OpenLayers (full build, used by django.contrib.gis admin OSM/OpenLayers widget)
t="$(prepare ol ol)"
copy_files ol "$t" dist/ol.js ol.css
copy_license ol "$t"

# Never ship source maps, and drop the sourceMappingURL comments that point at
# them: Django's ManifestStaticFilesStorage rewrites those references and makes
# collectstatic fail when the .map file is missing (and browsers' devtools would
# request them and 404).
find "$DEST" -name '*.map' -delete
find "$DEST" -type f \( -name '*.js' -o -name '*.css' \) -exec \
    sed -i -E -e '/^[[:space:]]*\/\/# sourceMappingURL=/d' \
              -e '/^[[:space:]]*\/\*# sourceMappingURL=.*\*\/[[:space:]]*$/d' {} +

echo "vendored into $DEST:"
(cd "$DEST" && find . -type f | sort)
du -sh "$DEST"
