#!/usr/bin/env bash
# Installs everything the test suite needs (idempotently) and runs all of it:
# ruff, mypy --strict on the sans-I/O cores, and pytest (vectors, properties,
# interop). Exit status is non-zero if any step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/venv.sh
.venv/bin/python -m pip install -q -e '.[test]'

# Browser tests: Debian's Chromium, driven by Python playwright (no browser download).
if [ ! -x /usr/bin/chromium ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium
fi

# Reactions in the browser tests' screenshots: a colour emoji font (users' systems have one).
if ! fc-list 2>/dev/null | grep -qi emoji; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fonts-noto-color-emoji
fi

# `clave setup` tests: xdg-mime and xdg-open register and follow the clave:// handler.
if [ ! -x /usr/bin/xdg-mime ] || [ ! -x /usr/bin/xdg-open ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends xdg-utils
fi

# Relay cluster tests: Debian's nats-server (the tests start it on random ports).
if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nats-server
fi

# Interop peer: npm ts-mls@1.6.4 under Node.js >= 20 (tests/interop).
if ! command -v node >/dev/null 2>&1; then
    apt-get update -qq && apt-get install -y -qq nodejs
fi
command -v npm >/dev/null 2>&1 || apt-get install -y -qq npm
node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' \
    || { echo "error: tests/interop needs Node.js >= 20 (found $(node --version))" >&2; exit 1; }
if ! cmp -s tests/interop/package-lock.json tests/interop/node_modules/.installed-lock.json; then
    (cd tests/interop && npm ci --no-audit --no-fund --loglevel=error \
        && cp package-lock.json node_modules/.installed-lock.json)
fi

# Accessibility audit: npm axe-core, injected into the meeting page (tests/browser).
if ! cmp -s tests/browser/a11y/package-lock.json tests/browser/a11y/node_modules/.installed-lock.json; then
    (cd tests/browser/a11y && npm ci --no-audit --no-fund --loglevel=error \
        && cp package-lock.json node_modules/.installed-lock.json)
fi

if [ ! -d ../shared/vectors ]; then
    echo "error: ../shared/vectors is missing; the conformance tests need it" >&2
    exit 1
fi

echo "== ruff"
.venv/bin/ruff check src tests bench
echo "== mypy --strict"
.venv/bin/mypy
echo "== pytest"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
