"""Build the documentation site and README.md offline, without Quarto.

nbdev's own notebook processing (`proc_nbs`: directives, hidden cells, show_doc, exported-cell execution) writes
`_proc/`; smalldocs renders it to HTML in `_docs/`, the same layout `nbdev-docs` (Quarto) produces on GitHub Actions.
README.md is rendered from the processed `index.ipynb`, as `nbdev-readme` would.

    python tools/build_docs.py            # _docs/ and README.md
    python tools/build_docs.py --check    # also fail if README.md is not what index.ipynb renders to
"""
import argparse
import json
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _text(v) -> str: return "".join(v) if isinstance(v, list) else v


def readme_from_notebook(nb_path: Path) -> str:
    "GitHub-flavoured Markdown from a processed notebook: its frontmatter, markdown, visible code and text outputs."
    import yaml
    nb = json.loads(nb_path.read_text())
    out = []
    for c in nb["cells"]:
        src = _text(c["source"])
        if c["cell_type"] == "raw" and src.startswith("---"):
            fm = yaml.safe_load(src.strip().strip("-"))
            out.append(f"# {fm['title']}\n\n> {fm.get('description', '')}".rstrip())
        elif c["cell_type"] == "markdown":
            if src.startswith("<!-- WARNING"): continue
            out.append(src.strip())
        elif c["cell_type"] == "code":
            lines = src.splitlines()
            echo = not any(l.replace(" ", "") == "#|echo:false" for l in lines)
            code = "\n".join(l for l in lines if not l.startswith("#|")).strip()
            if echo and code: out.append(f"```python\n{code}\n```")
            for o in c.get("outputs", []):
                if o["output_type"] == "stream" and o["name"] == "stdout": out.append(f"```\n{_text(o['text']).rstrip()}\n```")
                elif o["output_type"] in ("execute_result", "display_data"):
                    d = o["data"]
                    if "text/markdown" in d: out.append(_text(d["text/markdown"]).strip())
                    elif "text/plain" in d and not any(k.startswith("image/") for k in d):
                        out.append(f"```\n{_text(d['text/plain']).rstrip()}\n```")
    return "\n\n".join(out) + "\n"


def build(check: bool = False) -> int:
    os.chdir(ROOT)
    from nbdev.config import get_config
    from nbdev.quarto import nbdev_sidebar, refresh_quarto_yml
    from nbdev.serve import proc_nbs
    cfg = get_config()
    refresh_quarto_yml()
    nbdev_sidebar.__wrapped__(path=cfg.nbs_path)
    cache = proc_nbs(cfg.nbs_path, n_workers=0)
    readme = readme_from_notebook(cache / "index.ipynb")
    if check and (ROOT / "README.md").read_text() != readme:
        print("README.md is out of date: run `python tools/build_docs.py` and commit it", file=sys.stderr)
        return 1
    (ROOT / "README.md").write_text(readme)
    from smalldocs.site import build as render
    render(str(cache), quiet=True)
    site = ROOT / cfg.doc_path.name
    shutil.rmtree(site, ignore_errors=True)
    shutil.move(str(cache / cfg.doc_path.name), str(site))
    pages = sorted(p.name for p in site.glob("*.html"))
    print(f"built {len(pages)} pages in {site}: {', '.join(pages)}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if README.md differs from what index.ipynb renders to")
    sys.exit(build(ap.parse_args().check))
