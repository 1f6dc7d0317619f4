"""Bad input: one line on stderr naming the file and the problem, exit status 1, no traceback.

Each case writes one bad file into ``tmp_path`` and runs ``xlhand inspect`` on it through the CLI entry point; two
cases also run the installed ``xlhand`` console script in a subprocess.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import TINY_TOML, subprocess_env, write_tiny_hand, xlhand_script

from xlhand.cli.main import main

ONE_JOINT = """<robot name="r">
  <link name="a"/><link name="b"/>
  <joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit lower="0" upper="1"/></joint>
</robot>
"""

BILLION_LAUGHS = """<?xml version="1.0"{encoding}?>
<!DOCTYPE lolz [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<robot name="&lol9;">
  <link name="a"><visual><geometry><box size="&lol9; 1 1"/></geometry></visual></link><link name="b"/>
  <joint name="j" type="revolute"><parent link="a"/><child link="b"/><limit lower="0" upper="1"/></joint>
</robot>
"""


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    return exit_info.value.code, out, err


def assert_one_line_error(path, problem: str, capsys, args=None) -> str:
    """Run ``xlhand inspect PATH``; the error must be one stderr line naming ``path`` and containing ``problem``."""
    code, out, err = run_cli(args or ["inspect", str(path)], capsys)
    assert code == 1, (code, out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert str(path) in lines[0], lines[0]
    assert problem in lines[0], lines[0]
    assert "Traceback" not in err
    return lines[0]


def test_missing_file(tmp_path, capsys):
    path = tmp_path / "nowhere" / "hand.urdf"
    assert_one_line_error(path, "no such file", capsys)


def test_missing_file_via_hands_show(tmp_path, capsys):
    path = tmp_path / "hand.toml"
    assert_one_line_error(path, "no such file", capsys, args=["hands", "show", str(path)])


def test_not_xml(tmp_path, capsys):
    path = tmp_path / "hand.urdf"
    path.write_text("this is a README, not a robot\n")
    assert_one_line_error(path, "not well-formed XML", capsys)


def test_xml_but_not_urdf(tmp_path, capsys):
    path = tmp_path / "page.urdf"
    path.write_text("<html><body><p>hello</p></body></html>")
    line = assert_one_line_error(path, "not a URDF", capsys)
    assert "<html>" in line


def test_robot_without_links(tmp_path, capsys):
    path = tmp_path / "empty.urdf"
    path.write_text('<robot name="r"></robot>')
    assert_one_line_error(path, "not a URDF: <robot> has no <link> elements", capsys)


def test_joint_cycle(tmp_path, capsys):
    path = tmp_path / "cycle.urdf"
    path.write_text(
        """<robot name="r"><link name="a"/><link name="b"/><link name="c"/>
        <joint name="ab" type="revolute"><parent link="a"/><child link="b"/><limit lower="0" upper="1"/></joint>
        <joint name="bc" type="revolute"><parent link="b"/><child link="c"/><limit lower="0" upper="1"/></joint>
        <joint name="ca" type="revolute"><parent link="c"/><child link="a"/><limit lower="0" upper="1"/></joint>
        </robot>"""
    )
    assert_one_line_error(path, "the joints form a cycle", capsys)


def test_two_roots(tmp_path, capsys):
    path = tmp_path / "forest.urdf"
    path.write_text(ONE_JOINT.replace('<link name="b"/>', '<link name="b"/><link name="stray"/>'))
    line = assert_one_line_error(path, "2 separate trees", capsys)
    assert "'a'" in line and "'stray'" in line


def test_fingertip_link_missing(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path, toml=TINY_TOML.format(name="tiny").replace('"index_tip"', '"index_nail"'))
    line = assert_one_line_error(toml, "fingertip link 'index_nail' does not exist", capsys)
    assert "fingertips.index" in line


def test_mesh_path_escapes_folder(tmp_path, capsys):
    folder = tmp_path / "hand"
    folder.mkdir()
    (tmp_path / "secret.stl").write_text("solid x\nendsolid x\n")
    path = folder / "hand.urdf"
    path.write_text(
        ONE_JOINT.replace(
            '<link name="a"/>',
            '<link name="a"><visual><geometry><mesh filename="meshes/../../secret.stl"/></geometry></visual></link>',
        )
    )
    line = assert_one_line_error(path, "escapes the hand's folder", capsys)
    assert "meshes/../../secret.stl" in line


@pytest.mark.parametrize("filename", ["/etc/passwd", "package://hand/../../secret.stl", "file:///etc/hostname"])
def test_mesh_path_escapes_folder_other_forms(tmp_path, capsys, filename):
    path = tmp_path / "hand" / "hand.urdf"
    path.parent.mkdir()
    path.write_text(
        ONE_JOINT.replace(
            '<link name="a"/>', f'<link name="a"><visual><geometry><mesh filename="{filename}"/></geometry></visual></link>'
        )
    )
    assert_one_line_error(path, "escapes the hand's folder", capsys)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
def test_entity_expansion_bomb(tmp_path, capsys, encoding):
    path = tmp_path / "lol.urdf"
    path.write_bytes(BILLION_LAUGHS.format(encoding=f' encoding="{encoding.upper()}"').encode(encoding))
    assert_one_line_error(path, "XML declares entities", capsys)


def test_hand_toml_unknown_key(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path, toml='colour = "blue"\n' + TINY_TOML.format(name="tiny"))
    line = assert_one_line_error(toml, "unknown key", capsys)
    assert f"{toml}: colour: unknown key" in line


def test_hand_toml_unknown_nested_key(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path, toml=TINY_TOML.format(name="tiny").replace("rpy =", "quat = [0, 0, 0, 1]\nrpy ="))
    line = assert_one_line_error(toml, "unknown key", capsys)
    assert f"{toml}: mount.quat: unknown key" in line


@pytest.mark.parametrize(
    "old, new, key, problem",
    [
        ('name = "tiny"', "name = 42", "name", "expected a string"),
        ("xyz = [0.0, 0.0, 0.0]", 'xyz = "up"', "mount.xyz", "expected a list of 3 finite numbers"),
        ('thumb = "thumb_tip"', "thumb = 7", "fingertips.thumb", "expected a link name or a table"),
        ("[mount]", "[limits]\nindex_mcp = [1.0]\n\n[mount]", "limits.index_mcp", "expected a list of 2 finite numbers"),
    ],
)
def test_hand_toml_wrong_type(tmp_path, capsys, old, new, key, problem):
    text = TINY_TOML.format(name="tiny")
    assert old in text
    toml = write_tiny_hand(tmp_path, toml=text.replace(old, new, 1))
    line = assert_one_line_error(toml, problem, capsys)
    assert f"{toml}: {key}: {problem}" in line


def test_hand_toml_not_toml(tmp_path, capsys):
    toml = write_tiny_hand(tmp_path, toml="name = \n")
    assert_one_line_error(toml, "not valid TOML", capsys)


def test_valid_tiny_hand_is_accepted(tmp_path, capsys):
    """The control for the cases above: the unmodified files load."""
    toml = write_tiny_hand(tmp_path)
    code, out, err = run_cli(["inspect", str(toml), "--json"], capsys)
    assert code == 0, err
    assert '"dof": 3' in out


@pytest.mark.parametrize("case", ["bomb", "unknown_key"])
def test_console_script_one_line_no_traceback(tmp_path, case):
    if case == "bomb":
        path = tmp_path / "lol.urdf"
        path.write_text(BILLION_LAUGHS.format(encoding=""))
        problem = "XML declares entities"
    else:
        path = write_tiny_hand(tmp_path, toml="extras = 1\n" + TINY_TOML.format(name="tiny"))
        problem = "extras: unknown key"
    proc = subprocess.run(
        xlhand_script() + ["inspect", str(path)], capture_output=True, text=True, env=subprocess_env(), timeout=120
    )
    assert proc.returncode == 1, proc
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: {path}: ") and problem in lines[0], lines[0]
