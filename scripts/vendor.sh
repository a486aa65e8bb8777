#!/bin/sh
# Vendored browser assets (第三方前端资源): fetched once from the npm registry with `npm pack`, checked
# against the registry's integrity hash, unpacked, and committed with their licence files, so the shop serves
# every asset itself and `make demo` needs no network. Run it only to change a version; commit the result.
#
#   scripts/vendor.sh            # fetch the pinned versions below into src/quanyi/web/static/vendor/
#
# Each package's version, file list and sha256 land in src/quanyi/web/static/vendor/VENDORED.txt.
set -eu

ECHARTS_VERSION=6.1.0
HTMX_VERSION=2.0.11

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DEST="$ROOT/src/quanyi/web/static/vendor"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

fetch() {  # fetch NAME VERSION DIR FILE... : copy package/FILE of NAME@VERSION into vendor/DIR
    name=$1; version=$2; dir=$3; shift 3
    (cd "$WORK" && npm pack --silent "$name@$version" >/dev/null)
    tarball="$WORK/$(echo "$name" | tr -d @ | tr / -)-$version.tgz"
    # The tarball must be the one the registry published: compare with its integrity hash.
    got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    expected=$(npm view "$name@$version" dist.integrity)
    if [ "$got" != "$expected" ]; then echo "$name@$version: integrity $got, registry says $expected" >&2; exit 1; fi
    echo "$name@$version tarball $got" >> "$WORK/VENDORED.txt"
    rm -rf "$WORK/package" && tar -xzf "$tarball" -C "$WORK"
    mkdir -p "$DEST/$dir"
    for file in "$@"; do
        cp "$WORK/package/$file" "$DEST/$dir/$(basename "$file")"
        echo "  $dir/$(basename "$file") sha256 $(sha256sum "$DEST/$dir/$(basename "$file")" | cut -d' ' -f1)" >> "$WORK/VENDORED.txt"
    done
}

: > "$WORK/VENDORED.txt"
# Apache ECharts (Apache-2.0): the full minified browser build, with its licence and notice.
fetch echarts "$ECHARTS_VERSION" echarts dist/echarts.min.js LICENSE NOTICE
# htmx (0BSD): the enterprise portal's partial page updates (a bulk purchase's live progress).
fetch htmx.org "$HTMX_VERSION" htmx dist/htmx.min.js LICENSE

{
    echo "# Browser assets vendored by scripts/vendor.sh from the npm registry (https://registry.npmjs.org)."
    echo "# package@version, then each file with its sha256. Served under /static/vendor/."
    cat "$WORK/VENDORED.txt"
} > "$DEST/VENDORED.txt"
echo "vendored into $DEST:"
cat "$DEST/VENDORED.txt"
