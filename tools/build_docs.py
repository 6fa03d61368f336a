"""Build the documentation site and README.md offline, without Quarto.

nbdev's own notebook processing (`proc_nbs`: directives, hidden cells, show_doc, exported-cell execution) writes
`_proc/`; smalldocs renders it to HTML in `_docs/`, the same layout `nbdev-docs` (Quarto) produces on GitHub Actions.
README.md is rendered from the processed `index.ipynb`, as `nbdev-readme` would.

The maths is typeset in the browser by KaTeX. smalldocs links it from a CDN; this build copies KaTeX into the site
(`site_libs/katex/`) from its npm package, downloaded once into `.cache/` and checked against a pinned SHA-256, so a
page shows its formulas with no network: a local build, a saved page, a reader offline.

    python tools/build_docs.py                # _docs/ and README.md
    python tools/build_docs.py --check        # also fail if README.md is not what index.ipynb renders to
    python tools/build_docs.py --fetch-katex  # only download KaTeX into .cache/ (tools/install.sh dev does this)
"""
import argparse
import hashlib
import io
import json
import os
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KATEX_VERSION = "0.16.11"  # the version smalldocs' pages ask for (smalldocs.layout.KATEX)
KATEX_SHA256 = "8c5494c5f7d8e8bf73ff3fe64d4bd09a340e4878b7eec9bbd9ef8d8f3e24193f"  # of katex-0.16.11.tgz on registry.npmjs.org
KATEX_FILES = ("katex.min.css", "katex.min.js", "contrib/auto-render.min.js")  # what the pages load; the CSS loads fonts/


def katex_dist() -> Path:
    "KaTeX's browser files (and its MIT licence) from its npm package, downloaded once into .cache/ and checked."
    dest = ROOT / ".cache" / f"katex-{KATEX_VERSION}"
    if (dest / "katex.min.js").exists(): return dest
    url = f"https://registry.npmjs.org/katex/-/katex-{KATEX_VERSION}.tgz"
    try: data = urllib.request.urlopen(url, timeout=120).read()
    except OSError as e:
        raise SystemExit(f"could not download KaTeX from {url}: {e}\nFix: run this once with access to the npm registry "
                         f"(tools/install.sh dev does), or put the package's dist/ folder in {dest}")
    got = hashlib.sha256(data).hexdigest()
    if got != KATEX_SHA256: raise SystemExit(f"{url} has SHA-256 {got}, not the pinned {KATEX_SHA256}: refusing to use it")
    tmp = dest.with_name(dest.name + ".part")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        keep = [m for m in t.getmembers() if m.isfile() and (m.name == "package/LICENSE" or m.name in {f"package/dist/{f}" for f in KATEX_FILES}
                                                             or m.name.startswith("package/dist/fonts/"))]
        for m in keep:
            out = tmp / m.name.removeprefix("package/dist/").removeprefix("package/")
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(t.extractfile(m).read())
    tmp.rename(dest)  # whole or absent: a cut-off download leaves only the .part folder
    return dest


def bundle_katex(site: Path) -> int:
    "Copy KaTeX into the site and point every page that links it from the CDN at the copy; the number of such pages."
    from smalldocs.layout import KATEX as cdn
    if f"katex@{KATEX_VERSION}/" not in cdn:
        raise SystemExit(f"smalldocs links KaTeX as {cdn}, not version {KATEX_VERSION}: update KATEX_VERSION and KATEX_SHA256")
    pages = [p for p in site.rglob("*.html") if cdn in p.read_text(encoding="utf-8")]
    if not pages: return 0
    target = site / "site_libs" / "katex"
    shutil.copytree(katex_dist(), target, dirs_exist_ok=True)
    for p in pages:
        p.write_text(p.read_text(encoding="utf-8").replace(cdn, Path(os.path.relpath(target, p.parent)).as_posix()), encoding="utf-8")
    return len(pages)


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
    maths = bundle_katex(site)
    pages = sorted(p.name for p in site.glob("*.html"))
    print(f"built {len(pages)} pages in {site} ({maths} with maths, KaTeX {KATEX_VERSION} bundled): {', '.join(pages)}")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if README.md differs from what index.ipynb renders to")
    ap.add_argument("--fetch-katex", action="store_true", help="only download KaTeX into .cache/, for building offline later")
    args = ap.parse_args()
    if args.fetch_katex: print(f"KaTeX {KATEX_VERSION} in {katex_dist()}"); sys.exit(0)
    sys.exit(build(args.check))
