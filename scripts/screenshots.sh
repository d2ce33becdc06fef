#!/usr/bin/env bash
# Regenerates the README's screenshots (docs/screenshots/*.png): a generated
# demo served by the real binary, driven through headless Chromium
# (Debian's chromium and chromium-driver).
set -euo pipefail
cd "$(dirname "$0")/.."
# Fail rather than skip when the browser is missing.
export KITH_REQUIRE_SERVICES=1
cargo test -p kith --test it browser::readme_screenshots -- --ignored --exact --nocapture
ls -l docs/screenshots/*.png
