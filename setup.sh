#!/usr/bin/env bash
# Set up everything the server (and, with --test, the test suite) needs on a fresh machine.
# Idempotent: re-running only installs what is missing.
#   bash setup.sh          runtime dependencies
#   bash setup.sh --test   plus test dependencies
set -euo pipefail
cd "$(dirname "$0")"

want_tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want_tests=1 ;;
    *) echo "unknown option: $arg" >&2; exit 2 ;;
  esac
done

PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' \
  || { echo "Python 3.11+ is required (found $("$PYTHON" --version 2>&1))" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

requirements=requirements.txt
[ "$want_tests" = 1 ] && requirements=requirements-dev.txt
echo "==> installing Python packages ($requirements)"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$requirements"

# Front-end libraries (Leaflet, ECharts) come from the npm registry, pinned in
# package-lock.json, and are copied into static/vendor/: the pages never load a CDN.
if [ ! -f static/vendor/.installed ] || [ package-lock.json -nt static/vendor/.installed ]; then
  command -v npm >/dev/null 2>&1 || { echo "npm is required for the web pages' map and chart libraries" >&2; exit 1; }
  echo "==> installing front-end libraries (npm ci)"
  npm ci --silent --no-audit --no-fund
  rm -rf static/vendor && mkdir -p static/vendor/leaflet static/vendor/leaflet.markercluster \
    static/vendor/leaflet.heat static/vendor/echarts
  cp -r node_modules/leaflet/dist/leaflet.js node_modules/leaflet/dist/leaflet.css \
    node_modules/leaflet/dist/images static/vendor/leaflet/
  cp node_modules/leaflet.markercluster/dist/leaflet.markercluster.js \
    node_modules/leaflet.markercluster/dist/MarkerCluster.css \
    node_modules/leaflet.markercluster/dist/MarkerCluster.Default.css static/vendor/leaflet.markercluster/
  cp node_modules/leaflet.heat/dist/leaflet-heat.js static/vendor/leaflet.heat/
  cp node_modules/echarts/dist/echarts.min.js static/vendor/echarts/
  touch static/vendor/.installed
fi

sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo

# Browser tests drive Debian's Chromium through Playwright (never `playwright install`).
# A CJK font makes the screenshots they save readable.
if [ "$want_tests" = 1 ] && { [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/wqy ]; }; then
  echo "==> installing Chromium and a Chinese font for the browser tests"
  $sudo apt-get update -qq && $sudo apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
fi

# The MongoDB tests run on a real MongoDB-protocol server: FerretDB on a private PostgreSQL
# cluster (scripts/devdb). PostgreSQL comes from Debian; FerretDB is built from source with Go,
# once per machine, into ~/.cache/citydispatch-devdb.
if [ "$want_tests" = 1 ]; then
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "==> installing PostgreSQL for scripts/devdb"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  # Stops with a clear error if Go is missing (and the binary is not cached yet).
  scripts/devdb build
  # tests/test_nginx.py runs Debian's nginx (as its own child process) in front of two servers.
  if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
    echo "==> installing nginx for tests/test_nginx.py"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light >/dev/null
  fi
fi
echo "==> ready"
