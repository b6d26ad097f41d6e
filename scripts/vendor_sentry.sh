#!/usr/bin/env bash
# Rebuild static/vendor/sentry/sentry-browser.min.js, the Sentry browser SDK the pages load, from
# the exact versions in package-lock.json. Only this needs Node.js and npm: the app and its tests
# use the committed file.
#
#   bash scripts/vendor_sentry.sh           # rebuild the committed file
#   bash scripts/vendor_sentry.sh --check   # rebuild into a temporary file; fail if it differs
#
# A newer SDK: npm install --save-exact --ignore-scripts @sentry/browser@X.Y.Z, then run this and
# commit package.json, package-lock.json and static/vendor/sentry/ together.
set -euo pipefail
cd "$(dirname "$0")/.."

npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
version="$(node -p 'require("@sentry/browser/package.json").version')"
vendored=static/vendor/sentry/sentry-browser.min.js
out="$vendored"
if [ "${1:-}" = "--check" ]; then
  out="$(mktemp --suffix=.js)"
  trap 'rm -f "$out"' EXIT
fi

# An IIFE that defines window.Sentry, minified, for the browsers the staff use (ES2020).
node_modules/.bin/esbuild scripts/sentry_bundle.js \
  --bundle --minify --format=iife --global-name=Sentry --target=es2020 \
  --legal-comments=none --log-level=warning \
  --banner:js="/*! @sentry/browser $version | MIT, see LICENSE beside this file | built by scripts/vendor_sentry.sh */" \
  --outfile="$out"

if [ "$out" != "$vendored" ]; then
  if cmp -s "$out" "$vendored"; then
    echo "$vendored is the build of @sentry/browser $version"
  else
    echo "$vendored differs from a fresh build of @sentry/browser $version: run bash scripts/vendor_sentry.sh" >&2
    exit 1
  fi
else
  cp node_modules/@sentry/browser/LICENSE static/vendor/sentry/LICENSE
  echo "built $vendored from @sentry/browser $version ($(wc -c <"$vendored") bytes)"
fi
