#!/usr/bin/env bash
# Copy axe-core (the accessibility checker the browser tests run in each page) from the exact
# version in package-lock.json into tests/browser/vendor/. Only this needs Node.js and npm: the
# tests use the committed file.
#
#   bash scripts/vendor_axe.sh           # copy it
#   bash scripts/vendor_axe.sh --check   # fail if the committed file is not that version's
#
# A newer axe-core: npm install --save-exact --ignore-scripts axe-core@X.Y.Z, then run this and
# commit package.json, package-lock.json and tests/browser/vendor/ together.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
version="$(node -p 'require("axe-core/package.json").version')"
vendored=tests/browser/vendor/axe.min.js
if [ "${1:-}" = "--check" ]; then
  if cmp -s node_modules/axe-core/axe.min.js "$vendored"; then
    echo "$vendored is axe-core $version"
  else
    echo "$vendored is not axe-core $version: run bash scripts/vendor_axe.sh" >&2
    exit 1
  fi
else
  cp node_modules/axe-core/axe.min.js "$vendored"
  cp node_modules/axe-core/LICENSE tests/browser/vendor/axe.LICENSE
  echo "copied axe-core $version to $vendored ($(wc -c <"$vendored") bytes)"
fi
