"""Binder opens the dashboard: binder/ pins what requirements.txt pins (CPU torch builds aside),
installs the package, culls idle kernels, and the README's badge renders app/explorer.ipynb."""

import json
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

REPO = Path(__file__).resolve().parents[1]


def pins(path: Path) -> dict:
    out = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            out[name.strip().lower()] = version.strip()
    return out


def test_binder_pins_the_same_versions_as_requirements():
    ci, binder = pins(REPO / "requirements.txt"), pins(REPO / "binder" / "requirements.txt")
    for name in ("torch", "torchvision"):  # Binder has no GPU: the CPU builds of the same versions
        assert binder[name] == ci[name] + "+cpu"
    for name in ("ipywidgets", "bokeh", "jupyter_bokeh", "voila", "jupyterlab", "ipykernel", "numpy", "pandas"):
        assert binder[name] == ci[name], name
    assert set(binder) - {"torch", "torchvision"} <= set(ci)
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in (REPO / "binder" / "requirements.txt").read_text()


def test_binder_installs_the_package_and_culls_idle_kernels():
    post = (REPO / "binder" / "postBuild").read_text()
    assert "pip install --no-cache-dir --no-deps -e ." in post
    assert "binder/jupyter_server_config.json" in post
    for path in (REPO / "binder" / "jupyter_server_config.json", REPO / "voila.json"):
        cull = json.loads(path.read_text())["MappingKernelManager"]
        assert cull["cull_idle_timeout"] > 0 and cull["cull_interval"] > 0 and cull["cull_connected"] is False


def test_the_badge_renders_the_dashboard_notebook_through_voila():
    badges = re.findall(r"\(https://mybinder\.org/v2/gh/([^)\s]+)\)", (REPO / "README.md").read_text())
    assert badges
    for url in badges:
        owner, name, ref = url.split("?")[0].split("/")[:3]
        assert name == "lt-explorer" and ref
        urlpath = unquote(parse_qs(urlparse("https://x/" + url).query)["urlpath"][0])
        assert urlpath.startswith("voila/render/")
        assert (REPO / urlpath[len("voila/render/"):]).is_file()
        assert urlpath == "voila/render/app/explorer.ipynb"


def test_binder_pins_every_pinned_package_the_dashboard_imports():
    """Binder installs only what binder/requirements.txt lists (and their dependencies, unpinned):
    every package of requirements.txt that the dashboard's kernel imports must be pinned there too,
    not left to arrive through another package (PyYAML came only with bokeh)."""
    import subprocess
    import sys

    probe = ("import importlib.metadata as md, json, sys\n"
             "from lt_core.dashboard import build_app, close_kernel_with_page, plot_resources\n"
             "build_app()\n"
             "dists = md.packages_distributions()\n"
             "print(json.dumps(sorted({d.lower() for m in list(sys.modules) for d in dists.get(m.split('.')[0], [])})))\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout.strip().splitlines()[-1]))
    ci, binder = pins(REPO / "requirements.txt"), pins(REPO / "binder" / "requirements.txt")
    assert "pyyaml" in imported
    assert sorted((imported & set(ci)) - set(binder)) == []
    assert binder["pyyaml"] == ci["pyyaml"]


def test_binder_serves_the_page_with_its_own_template():
    """The template that drops the CDN stylesheets is installed where Voila looks and chosen by the config."""
    post = (REPO / "binder" / "postBuild").read_text()
    template = REPO / "app" / "share" / "jupyter" / "voila" / "templates" / "lt-explorer"
    assert template.is_dir() and any(template.iterdir())
    assert "cp -r app/share/jupyter/voila/templates/lt-explorer" in post
    assert '"${HOME}/.local/share/jupyter/voila/templates' in post
    config = json.loads((REPO / "binder" / "jupyter_server_config.json").read_text())
    assert config["VoilaConfiguration"]["template"] == template.name
