#!/usr/bin/env bash
# Re-vendor htmx and Leaflet from their npm packages (run from anywhere; needs npm). The files are
# committed so that a field station needs no network: the pages never load anything from a CDN.
set -euo pipefail
HTMX=2.0.11
LEAFLET=1.9.4
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
npm pack --silent "htmx.org@$HTMX" "leaflet@$LEAFLET" >/dev/null
mkdir h l
tar xzf "htmx.org-$HTMX.tgz" -C h
tar xzf "leaflet-$LEAFLET.tgz" -C l
cp h/package/dist/htmx.min.js h/package/LICENSE "$here/htmx/"
cp l/package/dist/leaflet.js l/package/dist/leaflet.css l/package/LICENSE "$here/leaflet/"
cp l/package/dist/images/*.png "$here/leaflet/images/"
cat > "$here/VENDORED.md" <<NOTE
# Vendored front-end libraries

Copied unchanged from their npm packages by \`vendor.sh\` (in this folder), so that no page of
Pardus loads anything from another machine (a field station is often offline).

| library | version | npm package | files | licence |
|---|---|---|---|---|
| htmx | $HTMX | htmx.org@$HTMX | dist/htmx.min.js | htmx/LICENSE (0BSD) |
| Leaflet | $LEAFLET | leaflet@$LEAFLET | dist/leaflet.js, dist/leaflet.css, dist/images/*.png | leaflet/LICENSE (BSD-2-Clause) |
NOTE
