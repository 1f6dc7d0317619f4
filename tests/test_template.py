"""The hand-plugin template (``templates/hand-plugin``), tested the way users meet it.

It is rendered into a temporary folder (``xlhand new hand``), the exact files are checked, and the package is
installed — not editable, so package data must really ship — into a fresh virtual environment beside three broken
third-party plugins. There `xlhand hands list` finds the hand through its entry point, the package's own smoke
test passes, and the broken plugins are reported by `xlhand plugins` while the rest of the CLI keeps working.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from plugin_venv import PluginVenv, require_build_backend

from xlhand.packaging.newhand import new_hand
from xlhand.packaging.template import template_root

REPO = Path(__file__).resolve().parents[1]
TRIBOT_URDF = REPO / "examples" / "xlhand-tribot" / "xlhand_tribot" / "hand" / "tribot.urdf"
NAME = "demo-hand"  # a '-' in the name: distribution xlhand-demo-hand, module xlhand_demo_hand

TEMPLATE_FILES = {"README.md", "pyproject.toml", "tests/test_{{package}}.py", "{{package}}/__init__.py"}
RENDERED_FILES = [
    "README.md",
    "pyproject.toml",
    "tests/test_xlhand_demo_hand.py",
    "xlhand_demo_hand/__init__.py",
    "xlhand_demo_hand/hand/hand.toml",
    "xlhand_demo_hand/hand/tribot.urdf",
]


def test_template_holds_exactly_these_files():
    root = template_root()
    found = set()

    def walk(node, rel=""):
        for child in node.iterdir():
            if child.name in ("__pycache__",) or child.name.endswith(".pyc"):
                continue
            if child.is_dir():
                walk(child, f"{rel}{child.name}/")
            else:
                found.add(f"{rel}{child.name}")

    walk(root)
    assert found == TEMPLATE_FILES


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    return new_hand(NAME, TRIBOT_URDF, tmp_path_factory.mktemp("render"), description="A demo hand.")


def test_rendered_template_has_exactly_these_files(rendered):
    assert rendered.path.name == "xlhand-demo-hand"
    assert rendered.files == RENDERED_FILES
    for rel in rendered.files:
        text = (rendered.path / rel).read_text()
        assert "{{" not in text and "}}" not in text, rel
        if rel.endswith(".py"):
            compile(text, rel, "exec")
    project = tomllib.loads((rendered.path / "pyproject.toml").read_text())
    assert project["project"]["name"] == "xlhand-demo-hand"
    assert project["project"]["description"] == "A demo hand"
    assert project["project"]["entry-points"]["xlhand"] == {NAME: "xlhand_demo_hand"}
    assert project["tool"]["setuptools"]["packages"] == ["xlhand_demo_hand"]
    assert project["tool"]["setuptools"]["package-data"] == {"xlhand_demo_hand": ["hand/**/*"]}
    assert (rendered.path / "xlhand_demo_hand/hand/tribot.urdf").read_bytes() == TRIBOT_URDF.read_bytes()
    readme = (rendered.path / "README.md").read_text()
    assert "pip install xlhand-demo-hand" in readme and 'xlhand.load_hand("demo-hand")' in readme


def test_docs_list_every_template_variable(rendered):
    from xlhand.packaging.newhand import template_variables

    docs = (REPO / "docs" / "plugins.md").read_text()
    listed = docs.split("hold `{{variable}}` placeholders — ", 1)[1].split(" — ", 1)[0]
    assert [v.strip(" `\n") for v in listed.split(",")] == list(template_variables(NAME, rendered.hand, "d"))


def test_unknown_template_variable_is_an_error(tmp_path):
    from xlhand.errors import XlhandError
    from xlhand.packaging.template import render_template

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a.txt").write_text("{{nope}}")
    with pytest.raises(XlhandError, match=r"unknown template variable \{\{nope\}\}"):
        render_template(tmp_path / "t", tmp_path / "out", {"name": "x"})


# ---------------------------------------------------------------------------------------------------------------
# Installed, beside broken plugins

BROKEN = {
    # entry point -> module source; each package is xlhand-<entry point> with module xlhand_<entry point>
    "broken-import": "raise ImportError('this plugin cannot be imported')\n",
    "dup-hand": (
        "from xlhand.hands import HERE\n"
        "from xlhand.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_hands(register):\n    register(HERE / 'inspire' / 'hand.toml')\n\n"
        "@hookimpl\ndef register_drivers(register):\n    register('sim', object)\n\n"
        "@hookimpl\ndef register_commands(app):\n    raise RuntimeError('no commands today')\n"
    ),
    "malformed-hand": (
        "from pathlib import Path\n"
        "from xlhand.plugins.hookspecs import hookimpl\n\n"
        "@hookimpl\ndef register_hands(register):\n    register(Path(__file__).parent / 'hand.toml')\n"
    ),
}


def _write_broken_package(root: Path, ep: str, source: str) -> Path:
    module = "xlhand_" + ep.replace("-", "_")
    pkg = root / f"xlhand-{ep}"
    (pkg / module).mkdir(parents=True)
    (pkg / module / "__init__.py").write_text(source)
    (pkg / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=68"]\nbuild-backend = "setuptools.build_meta"\n\n'
        f'[project]\nname = "xlhand-{ep}"\nversion = "0.0.1"\n\n'
        f'[project.entry-points.xlhand]\n{ep} = "{module}"\n\n'
        f'[tool.setuptools]\npackages = ["{module}"]\n\n'
        f'[tool.setuptools.package-data]\n{module} = ["*.toml", "*.urdf"]\n'
    )
    if ep == "malformed-hand":
        shutil.copyfile(TRIBOT_URDF, pkg / module / "tribot.urdf")
        (pkg / module / "hand.toml").write_text('name = "malformed"\nurdf = "tribot.urdf"\ncolour = "red"\n')
    return pkg


@pytest.fixture(scope="module")
def venv(tmp_path_factory, rendered):
    require_build_backend()
    root = tmp_path_factory.mktemp("plugins")
    broken = [_write_broken_package(root, ep, source) for ep, source in BROKEN.items()]
    env = PluginVenv(root / "venv")
    env.install(rendered.path, *broken)
    return env


def test_installed_template_package_is_found_by_hands_list(venv):
    result = venv.run("hands", "list", "--json", allow=NAME)
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows[NAME]["plugin"] == NAME
    assert rows[NAME]["description"] == "A demo hand"
    # the installed copy, with its URDF shipped as package data
    hand_toml = Path(rows[NAME]["hand_toml"])
    assert hand_toml.is_relative_to(venv.site_packages / "xlhand_demo_hand" / "hand")
    assert (hand_toml.parent / "tribot.urdf").is_file()
    assert {"ability", "inspire", "paxini", "xhand"} <= set(rows)


def test_installed_template_package_passes_its_own_tests(venv, rendered):
    import subprocess

    result = subprocess.run(
        [str(venv.python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(rendered.path / "tests")],
        capture_output=True, text=True, cwd=venv.path, env=venv.env(), timeout=180,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "3 passed" in result.stdout


def test_broken_plugins_are_reported_and_the_cli_keeps_working(venv):
    commands = {
        "plugins": ["plugins", "--json"],
        "plugins_table": ["plugins"],
        "hands": ["hands", "list", "--json"],
        "inspect": ["inspect", NAME, "--json"],
    }
    out = {}
    for key, (code, stdout, stderr) in zip(commands, venv.run_many(*commands.values())):
        assert code == 0, f"{key}: {stderr}"
        out[key] = stdout

    rows = {row["name"]: row for row in json.loads(out["plugins"])}
    assert rows[NAME]["errors"] == [] and rows[NAME]["hands"] == [NAME]
    assert rows[NAME]["version"] == "0.1.0"
    (error,) = rows["broken-import"]["errors"]
    assert error == "failed to load: ImportError: this plugin cannot be imported"
    dup = rows["dup-hand"]["errors"]
    assert "duplicate hand name 'inspire' (already registered by xlhand.hands)" in dup
    assert "duplicate driver name 'sim' (already registered by xlhand.plugins.sim_driver)" in dup
    assert "register_commands raised RuntimeError: no commands today" in dup
    (malformed,) = rows["malformed-hand"]["errors"]
    assert malformed.startswith("malformed hand: ") and malformed.endswith(
        "hand.toml: colour: unknown key (allowed: description, driver, fingertips, limits, mount, name, safety, urdf, vendor)")
    assert rows["xlhand.hands"]["errors"] == [] and rows["xlhand.plugins.sim_driver"]["drivers"] == ["sim"]
    assert "broken-import" in out["plugins_table"]

    hands = {row["name"]: row["plugin"] for row in json.loads(out["hands"])}
    assert hands[NAME] == NAME and hands["inspire"] == "xlhand.hands" and "malformed" not in hands
    inspected = json.loads(out["inspect"])
    assert inspected["name"] == NAME and inspected["dof"] == 8 and inspected["driver"] == "sim"
