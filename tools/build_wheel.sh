#!/usr/bin/env bash
# Build ftbook's wheel (without its dependencies) into the folder OUT:  bash tools/build_wheel.sh OUT
# It builds from a temporary copy of what the wheel is made of: setuptools would reuse the clone's build/lib (files
# deleted from the package since would ship again), and CI builds two wheels at the same time (tests/conftest.py and
# .ci/lower-bounds).
set -euo pipefail
out=$(realpath -m "${1:?usage: bash tools/build_wheel.sh OUT}")
cd "$(dirname "$0")/.."
src=$(mktemp -d)
trap 'rm -rf "$src"' EXIT
cp -r pyproject.toml README.md LICENSE ftbook "$src"/
find "$src" -name __pycache__ -prune -exec rm -rf {} +
${PYTHON:-python} -m pip wheel -q --no-deps -w "$out" "$src"
