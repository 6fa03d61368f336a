"""The house in layers (../shared/DESIGN.md, issue 32): every `ftbook` import, at module level or inside a function, runs
down the layers, so there is no import cycle, and a function-local import never hides one."""
import ast
from pathlib import Path

import ftbook

LAYERS = [  # (layer, its modules in import order: a module may import the layers below and the modules before it in its own)
    ("ground", ["config", "stats", "metrics", "data", "models"]),
    ("training machinery", ["train"]),
    # chapter 3 uses the leakage tools its companion chapter 3a builds, so leakage comes first
    ("methods", ["leakage", "pitfalls", "selfsup", "sft", "classify", "reward", "judge", "rlhf", "dpo", "fast"]),
    ("cross-chapter tools", ["lora", "bench", "scale"]),
    ("command line", ["cli"]),
]
RANK = {m: (i, j) for i, (_, mods) in enumerate(LAYERS) for j, m in enumerate(mods)}
LAZY_OK = {"cli"}  # imports after parsing, so that --help and `ftbook models` answer without loading torch


def ftbook_imports(path: Path):
    "(line, imported ftbook module, inside a function?, the source line) for every import of an ftbook module in `path`."
    src = path.read_text(encoding="utf-8")
    tree, lines = ast.parse(src), src.splitlines()
    out = []

    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            targets = []
            if isinstance(child, ast.ImportFrom):
                mod = child.module or ""
                if child.level == 1: targets = [mod.split(".")[0]] if mod else [a.name for a in child.names]
                elif mod.startswith("ftbook."): targets = [mod.split(".")[1]]
                elif mod == "ftbook": targets = [a.name for a in child.names]
            elif isinstance(child, ast.Import):
                targets = [a.name.split(".")[1] for a in child.names if a.name.startswith("ftbook.")]
            for t in targets: out.append((child.lineno, t, in_function, lines[child.lineno - 1]))
            visit(child, inside)
    visit(tree, False)
    return out


def layer_errors(package: Path) -> list[str]:
    "Every import in `package` that breaks a layer rule, as 'file:line: the import: the rule'."
    errors, edges = [], {}
    for f in sorted(package.glob("*.py")):
        m = f.stem
        if m.startswith("_"): continue
        if m not in RANK:
            errors.append(f"{f.name}: module {m!r} has no layer: add it to LAYERS in tests/test_layers.py and to the index's table")
            continue
        for line, t, local, text in ftbook_imports(f):
            where = f"{f.name}:{line}: `{text.strip()}`"
            if t not in RANK:
                if (package / f"{t}.py").exists(): errors.append(f"{where}: imports {t!r}, which has no layer")
                continue
            if t == m:
                if local and "#" not in text: errors.append(f"{where}: a module importing itself needs a comment that says why")
                continue
            edges.setdefault(m, set()).add(t)
            (lm, im), (lt, it) = RANK[m], RANK[t]
            if lt > lm:
                errors.append(f"{where}: {m} ({LAYERS[lm][0]}) imports {t} from a higher layer ({LAYERS[lt][0]}); "
                              f"move what it needs down to the lowest layer that fits, or move the code up")
            elif lt == lm and it > im:
                errors.append(f"{where}: {m} imports {t}, which comes after it in the {LAYERS[lm][0]} layer; "
                              f"a module imports only earlier modules of its own layer")
            if local and m not in LAZY_OK and "#" not in text:
                errors.append(f"{where}: a function-local ftbook import outside cli.py needs a comment that says why "
                              f"(an optional heavy dependency or a measured start-up cost); otherwise import it at the top")
    # a cycle would need an upward or sideways edge, so the checks above exclude it; find one anyway, to name it
    seen, stack = set(), []
    def walk(m):
        if m in stack: errors.append("import cycle: " + " -> ".join(stack[stack.index(m):] + [m])); return True
        if m in seen: return False
        seen.add(m); stack.append(m)
        found = any(walk(t) for t in sorted(edges.get(m, ())))
        stack.pop(); return found
    for m in sorted(edges):
        if walk(m): break
    return errors


PKG = Path(ftbook.__file__).parent


def test_every_import_runs_down_the_layers():
    errors = layer_errors(PKG)
    assert not errors, "\n".join(errors)


def test_every_module_has_a_layer():
    mods = {f.stem for f in PKG.glob("*.py") if not f.stem.startswith("_")}
    assert mods == set(RANK), (sorted(mods - set(RANK)), sorted(set(RANK) - mods))


def _copy_with(tmp_path, module: str, line: str, where: str = "top") -> Path:
    "A copy of the package with `line` added to `module`, at its top or inside a new function."
    pkg = tmp_path / "ftbook"
    pkg.mkdir(parents=True)
    for f in PKG.glob("*.py"): (pkg / f.name).write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    f = pkg / f"{module}.py"
    extra = f"\n{line}\n" if where == "top" else f"\n\ndef _added():\n    {line}\n"
    f.write_text(f.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return pkg


def test_an_upward_import_is_named_with_its_rule(tmp_path):
    errors = layer_errors(_copy_with(tmp_path, "train", "from ftbook.lora import compare"))
    assert len(errors) >= 1 and "train.py:" in errors[0] and "from a higher layer (cross-chapter tools)" in errors[0], errors
    assert any(e.startswith("import cycle: ") for e in errors), errors  # lora imports train: the new import closes a loop


def test_a_function_local_import_needs_its_reason(tmp_path):
    errors = layer_errors(_copy_with(tmp_path, "dpo", "from ftbook.models import load_model", where="function"))
    assert len(errors) == 1 and "needs a comment that says why" in errors[0], errors
    assert not layer_errors(_copy_with(tmp_path / "b", "dpo", "from ftbook.models import load_model  # start-up: 2 s",
                                       where="function"))


def test_a_later_module_of_the_same_layer_is_refused(tmp_path):
    errors = layer_errors(_copy_with(tmp_path, "sft", "from ftbook.dpo import pair_summary"))
    assert len(errors) >= 1 and "comes after it in the methods layer" in errors[0], errors


def test_the_index_shows_the_same_layers():
    "The docs home page's table (nbs/index.ipynb, 'How the library is built') lists the modules in the order above."
    import json, re
    index = Path(__file__).parents[1] / "nbs" / "index.ipynb"
    text = "".join("".join(c["source"]) for c in json.loads(index.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "markdown")
    section = text.split("## How the library is built", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\|\s*([^|]*?)\s*\|\s*`(\w+)`\s*\|", section, re.M)
    assert [m for _, m in rows] == [m for _, mods in LAYERS for m in mods], rows
    starts = [(label.strip(), m) for label, m in rows if label.strip()]
    assert [(name, mods[0]) for name, mods in LAYERS] == starts, starts
