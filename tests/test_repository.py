"""The repository's own promises: environment files agree, notebooks are clean and thin, and the
README's two commands are what CI runs."""

import ast
import json
import re
import tomllib

import pytest
import yaml

from bpo.paths import NOTEBOOKS_DIR, PROJECT_ROOT
from bpo.reproduce import notebooks


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower()


def test_environment_yml_and_pyproject_declare_the_same_dependencies():
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    declared = set(project["dependencies"]) | set(project["optional-dependencies"]["dev"])
    env = yaml.safe_load((PROJECT_ROOT / "environment.yml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    conda_pip = {r for r in pip_section if not r.startswith("-e")}
    assert conda_pip == declared, f"only in environment.yml: {conda_pip - declared}; only in pyproject: {declared - conda_pip}"
    assert "-e ." in pip_section


NOTEBOOKS = notebooks()


def test_the_pipeline_has_notebooks():
    assert NOTEBOOKS and NOTEBOOKS[0].name == "00_world.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_committed_clean_and_thin(path):
    nb = json.loads(path.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    dirty = [i for i, c in enumerate(code) if c.get("outputs") or c.get("execution_count")]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; strip them before committing"
    tagged = [c for c in code if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters', has {len(tagged)}"
    for node in ast.parse("".join(tagged[0]["source"])).body:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), \
            f"{path.name}: the parameters cell must hold flat literals only (line {node.lineno})"
    for cell in code:
        src = "".join(cell["source"])
        tree = ast.parse("\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!"))))
        defs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))]
        assert not defs, f"{path.name}: notebooks call the library, they define nothing (line {defs[0].lineno})"


def test_readme_commands_are_what_ci_runs():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "make reproduce" in readme and "make test" in readme
    ci = (PROJECT_ROOT / ".ci" / "run").read_text()
    assert re.search(r"^\s*make test\b", ci, re.M), ".ci/run must call the README's test command"


def test_reproduce_help_imports_no_torch():
    """The command line and the presets table load without the model stack."""
    import subprocess
    import sys

    code = ("import sys, runpy; sys.argv = ['bpo.reproduce', '--help']\n"
            "try:\n    runpy.run_module('bpo.reproduce', run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "import bpo.presets\nprint(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--preset" in out.stdout and out.stdout.strip().endswith("[]"), out.stdout[-300:]
