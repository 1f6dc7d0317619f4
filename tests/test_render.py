"""Rendering: real offscreen pictures whose content is checked, not only that nothing raised.

A picture is judged by its foreground (pixels that differ from the white background): the hand is in frame and
not clipped (no foreground on the border), it covers a sensible share of the picture, different poses give
different pictures, and every hand shows fingers up and the thumb on the right. The hands in
`../shared/fixtures/hands` are drawn with their meshes (OBJ+MTL, binary STL whose header says "solid", GLB).
No display is needed; without any OpenGL the error is one clear line (checked by hiding the GL libraries from a
subprocess).
"""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FIXTURE_HANDS, require_library, require_shared, subprocess_env, xlhand_script

import xlhand
from xlhand.errors import XlhandError
from xlhand.hand.poses import named_pose
from xlhand.render import (
    FINGER_RGB,
    RenderWarning,
    View,
    gl,
    render_animation,
    render_frames,
    render_grid,
    render_hand,
)

pytest.importorskip("pyrender")

BUILTIN = ["ability", "inspire", "paxini", "xhand"]
FIXTURES = {
    "allegro_hand": "allegro_hand_right.urdf",
    "barrett_hand": "bhand_model.urdf",
    "dclaw_gripper": "dclaw_gripper.urdf",
    "leap_hand": "leap_hand_right.urdf",
    "panda_gripper": "panda_gripper_glb.urdf",
    "unitree_dex3_1": "dex3_1_r.urdf",
}
SIZE = 96


@pytest.fixture(scope="module", autouse=True)
def opengl():
    """An offscreen GL context; without one the module is skipped, except in CI where it must work."""
    try:
        gl.renderer(8, 8)
    except XlhandError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"no offscreen OpenGL in CI: {exc}", pytrace=False)
        pytest.skip(str(exc))


def foreground(image: np.ndarray) -> np.ndarray:
    """Pixels that differ from the white background."""
    return (255 - image.astype(int)).max(axis=-1) > 12


def assert_framed(image: np.ndarray, what: str, lo: float = 0.03, hi: float = 0.6) -> None:
    """The hand is in the picture, not clipped by its border, and neither a speck nor the whole picture."""
    fg = foreground(image)
    frac = fg.mean()
    assert lo < frac < hi, f"{what}: foreground covers {frac:.1%} of the picture"
    border = np.concatenate([fg[0], fg[-1], fg[:, 0], fg[:, -1]])
    assert not border.any(), f"{what}: the hand touches the picture's border ({border.sum()} pixels)"


def load(name: str):
    if name in FIXTURES:
        require_shared(FIXTURE_HANDS)
        return xlhand.load_hand(FIXTURE_HANDS / name / FIXTURES[name])
    return xlhand.load_hand(name)


def poses(hand) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    return {"open": named_pose(hand, "open"), "fist": named_pose(hand, "fist"),
            "random": hand.sample(1, generator=gen), "lower": hand.lower[None], "upper": hand.upper[None]}


# ---------------------------------------------------------------------------------------------------------------
# Every hand: in frame, not clipped, pose-dependent


@pytest.mark.parametrize("name", BUILTIN + list(FIXTURES))
def test_every_hand_renders_in_frame_at_its_extreme_poses(name):
    hand = load(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RenderWarning)  # every mesh of these hands must be read
        images = {k: render_hand(hand, q, size=SIZE, ssaa=1) for k, q in poses(hand).items()}
    for kind, image in images.items():
        assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8
        assert_framed(image, f"{name} {kind}")
    assert np.abs(images["lower"].astype(int) - images["upper"].astype(int)).mean() > 1.0, (
        f"{name}: the joint-limit extremes look the same"
    )


def test_the_same_pose_gives_the_same_picture_and_other_poses_differ():
    hand = xlhand.load_hand("inspire")
    q = poses(hand)
    a = render_hand(hand, q["open"], size=128)
    b = render_hand(hand, q["open"], size=128)
    c = render_hand(hand, q["fist"], size=128)
    assert np.array_equal(a, b)
    changed = (np.abs(a.astype(int) - c.astype(int)).max(axis=-1) > 30).mean()
    assert changed > 0.02, f"open and fist differ in only {changed:.1%} of the pixels"


def test_mesh_formats_are_read_with_their_geometry():
    """Binary STL with a "solid" header (Dex3), GLB scenes (Panda), OBJ with MTL colours (Allegro)."""
    from xlhand.render.geometry import hand_pieces

    for name, fmt in (("unitree_dex3_1", ".STL"), ("panda_gripper", ".glb"), ("allegro_hand", ".obj")):
        hand = load(name)
        pieces = hand_pieces(hand)
        assert pieces and not any(p.standin for p in pieces), name
        assert all(len(s.mesh.faces) > 0 for p in pieces for s in p.surfaces)
        assert any(v.mesh.suffix == fmt for v in hand.robot.visuals)
    dex3 = hand_pieces(load("unitree_dex3_1"))
    assert sum(len(s.mesh.faces) for p in dex3 for s in p.surfaces) > 100_000  # read as binary, not as empty ASCII


# ---------------------------------------------------------------------------------------------------------------
# The view: every hand the same way round


@pytest.mark.parametrize("name", BUILTIN)
def test_fingers_point_up_and_the_thumb_is_on_the_right(name):
    from xlhand.render.scene import stage

    hand = xlhand.load_hand(name)
    q = named_pose(hand, "open")
    view = View()
    framing = stage().entry(hand).framing(hand, view)
    with torch.no_grad():
        tips = hand.fingertips(q)[0].double().numpy()
    px, _ = framing.project(view, 256, 256, np.vstack([np.zeros(3), tips]))
    wrist, tips_px = px[0], dict(zip(hand.fingers, px[1:], strict=True))
    for role in hand.fingers:
        if role != "thumb":
            assert tips_px[role][1] < wrist[1] - 50, f"{name}: the {role} tip is not above the wrist"
    others = [tips_px[r][0] for r in hand.fingers if r != "thumb"]
    assert tips_px["thumb"][0] > max(others), f"{name}: the thumb is not right of the other fingers"


def test_fingertip_markers_are_drawn_in_their_finger_colours():
    hand = xlhand.load_hand("xhand")
    plain = render_hand(hand, size=192)
    marked = render_hand(hand, size=192, markers=True, pinch_lines=True)

    def has(image, rgb):
        return (np.abs(image.astype(int) - np.array(rgb)).max(axis=-1) < 25).sum()

    for role in hand.fingers:
        assert has(marked, FINGER_RGB[role]) > 10, f"no {role} marker"
        assert has(plain, FINGER_RGB[role]) == 0
    assert_framed(marked, "xhand with markers")


def test_grid_tiles_the_pictures_with_a_label_under_each():
    cells = [(xlhand.load_hand(n), None, n) for n in ("inspire", "xhand")]
    image = render_grid(cells, size=SIZE, title="two hands")
    assert image.shape[1] == 2 * SIZE and image.shape[0] > SIZE
    assert_framed(image, "grid", lo=0.02)
    label_rows = foreground(image[-SIZE // 8:])
    assert label_rows[:, :SIZE].any() and label_rows[:, SIZE:].any(), "a label is missing"


# ---------------------------------------------------------------------------------------------------------------
# Missing or broken geometry: a warning and a stand-in, never a failure

STUB_URDF = """<?xml version="1.0"?>
<robot name="stub">
  <link name="palm"><visual><geometry><box size="0.02 0.08 0.09"/></geometry></visual></link>
  <link name="finger">
    <visual><origin xyz="0 0 0.02"/><geometry><mesh filename="meshes/{finger}"/></geometry></visual>
  </link>
  <link name="thumb">
    <visual><geometry><mesh filename="meshes/{thumb}" scale="0.001 0.001 0.001"/></geometry></visual>
  </link>
  <link name="finger_tip"/><link name="thumb_tip"/>
  <joint name="j1" type="revolute"><parent link="palm"/><child link="finger"/><origin xyz="0 0 0.05"/>
    <axis xyz="0 1 0"/><limit lower="0" upper="1.5" effort="1" velocity="1"/></joint>
  <joint name="j1t" type="fixed"><parent link="finger"/><child link="finger_tip"/><origin xyz="0 0 0.04"/></joint>
  <joint name="j2" type="revolute"><parent link="palm"/><child link="thumb"/><origin xyz="0.02 0.04 0"/>
    <axis xyz="0 0 1"/><limit lower="0" upper="1.5" effort="1" velocity="1"/></joint>
  <joint name="j2t" type="fixed"><parent link="thumb"/><child link="thumb_tip"/><origin xyz="0 0.04 0"/></joint>
</robot>
"""


def standin_pixels(image: np.ndarray) -> int:
    """Orange pixels: the colour of stand-ins (red well above blue)."""
    r, g, b = (image[..., i].astype(int) for i in range(3))
    return int(((r - b > 90) & (r > g)).sum())


def test_a_missing_mesh_gives_a_warning_and_a_stand_in(tmp_path):
    (tmp_path / "meshes").mkdir()
    (tmp_path / "meshes" / "broken.stl").write_text("this is not a mesh\n")
    (tmp_path / "hand.urdf").write_text(STUB_URDF.format(finger="missing.stl", thumb="broken.stl"))
    hand = xlhand.load_hand(tmp_path / "hand.urdf")
    with pytest.warns(RenderWarning) as caught:
        image = render_hand(hand, size=128)
    messages = [str(w.message) for w in caught]
    assert any("'missing.stl' of link 'finger' not found" in m for m in messages), messages
    assert any("'broken.stl' of link 'thumb'" in m for m in messages), messages
    assert_framed(image, "stub hand")
    assert standin_pixels(image) > 30, "no stand-in drawn"


def test_a_present_mesh_draws_no_stand_in_and_a_missing_material_file_warns(tmp_path):
    (tmp_path / "meshes").mkdir()
    obj = "mtllib gone.mtl\nusemtl x\nv 0 0 0\nv 0.02 0 0\nv 0 0.02 0\nv 0 0 0.02\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n"
    (tmp_path / "meshes" / "part.obj").write_text(obj)
    (tmp_path / "hand.urdf").write_text(STUB_URDF.format(finger="part.obj", thumb="part.obj"))
    hand = xlhand.load_hand(tmp_path / "hand.urdf")
    with pytest.warns(RenderWarning, match="material file 'gone.mtl'"):
        image = render_hand(hand, size=128)
    assert standin_pixels(image) == 0
    assert_framed(image, "stub hand with meshes", lo=0.01)


def test_cli_renders_a_hand_and_reports_warnings_on_stderr(tmp_path, capsys):
    from xlhand.cli.main import main

    (tmp_path / "hand.urdf").write_text(STUB_URDF.format(finger="missing.stl", thumb="missing2.stl"))
    out = tmp_path / "stub.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "hand", str(tmp_path / "hand.urdf"), "--size", "96", "-o", str(out)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    assert "warning:" in captured.err and "missing.stl" in captured.err
    from PIL import Image

    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (96, 96, 3)
    assert_framed(image, "cli picture")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--q", "0.1,0.2"], "needs 6 joint values"),
        (["--random", "--pinch"], "give one of --q, --random, --pinch, --pose"),
        (["--pose", "splayed"], "unknown pose 'splayed'"),
    ],
)
def test_cli_rejects_bad_poses_in_one_line(tmp_path, capsys, args, message):
    from xlhand.cli.main import main

    out = tmp_path / "x.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "hand", "inspire", "-o", str(out), *args])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_cli_pinch_pose_puts_the_thumb_on_the_index_tip(tmp_path, capsys):
    import json

    from xlhand.cli.main import main

    out = tmp_path / "pinch.png"
    with pytest.raises(SystemExit) as exit_info:
        main(["render", "hand", "xhand", "--pinch", "--size", "128", "--json", "-o", str(out)])
    captured = capsys.readouterr()
    assert exit_info.value.code == 0, captured.err
    info = json.loads(captured.out)
    assert info["pose"] == "pinch" and info["pinch_distance_mm"] < 2.0
    assert out.stat().st_size > 1000


# ---------------------------------------------------------------------------------------------------------------
# Animations: GIF and MP4, written atomically


def test_animation_files_are_written_whole_or_not_at_all(tmp_path):
    hands = [xlhand.load_hand(n) for n in ("inspire", "ability")]
    qs = [torch.stack([h.lower, (h.lower + h.upper) / 2, h.upper]) for h in hands]
    frames = list(render_frames(hands, qs, ["inspire", "ability"], size=64))
    assert len(frames) == 3 and frames[0].shape[1] == 128
    assert not np.array_equal(frames[0], frames[2])

    gif = render_animation(frames, tmp_path / "a.gif")
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames == 3 and im.size == (frames[0].shape[1], frames[0].shape[0])
    pytest.importorskip("imageio_ffmpeg")
    mp4 = render_animation(frames, tmp_path / "a.mp4")
    assert mp4.stat().st_size > 1000

    def failing():
        yield frames[0]
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        render_animation(failing(), tmp_path / "b.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "a.mp4"]  # no partial file, no temp file
    with pytest.raises(XlhandError, match="use .gif or .mp4"):
        render_animation(frames, tmp_path / "a.avi")


# ---------------------------------------------------------------------------------------------------------------
# No OpenGL at all: one clear line (the GL libraries hidden from a subprocess by unloadable stand-ins)


def _hide_libraries(folder: Path, names: list[str]) -> dict[str, str]:
    """An environment whose dynamic loader finds only empty, unloadable files for these libraries."""
    folder.mkdir()
    for name in names:
        for suffix in [""] + [f".{i}" for i in range(10)]:
            (folder / f"lib{name}.so{suffix}").write_bytes(b"")
    env = subprocess_env(LD_LIBRARY_PATH=str(folder))
    env.pop("PYOPENGL_PLATFORM", None)
    return env


def test_without_any_opengl_the_cli_says_so_in_one_line(tmp_path):
    env = _hide_libraries(tmp_path / "nogl", ["EGL", "OSMesa", "GL", "GLESv2"])
    out = tmp_path / "x.png"
    proc = subprocess.run(xlhand_script() + ["render", "hand", "inspire", "--size", "32", "-o", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: no offscreen OpenGL (egl: ") and "osmesa: " in lines[0]
    assert "apt-get install" in lines[0]
    assert not out.exists()


def test_without_egl_it_falls_back_to_osmesa(tmp_path):
    require_library("OSMesa", "libosmesa6")
    env = _hide_libraries(tmp_path / "noegl", ["EGL"])
    code = (
        "import numpy as np; from xlhand.render import render_hand, gl; "
        "im = render_hand('inspire', size=48, ssaa=1); "
        "print(gl.platform(), int(((255 - im.astype(int)).max(axis=-1) > 12).sum()))"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    platform, drawn = proc.stdout.split()
    assert platform == "osmesa" and int(drawn) > 50


# ---------------------------------------------------------------------------------------------------------------
# The latent space, seen (needs xlhand.load_space)

needs_space = pytest.mark.skipif(not hasattr(xlhand, "load_space"), reason="xlhand.load_space does not exist yet")


@pytest.fixture(scope="module")
def space_path(tmp_path_factory) -> str | None:
    """The shipped default space, or else a fresh (untrained) space over the built-in hands."""
    try:
        xlhand.load_space()
        return None
    except XlhandError:
        from xlhand.latent.space import Space

        path = tmp_path_factory.mktemp("space") / "space.safetensors"
        Space.new([xlhand.load_hand(n) for n in BUILTIN]).save(path)
        return str(path)


@needs_space
def test_decode_grid_shows_the_source_and_every_target(tmp_path, capsys, space_path):
    from PIL import Image
    from xlhand.cli.main import main

    space = xlhand.load_space(space_path)
    out = tmp_path / "grid.png"
    args = ["render", "decode", "--from", "inspire", "--pose", "pinch", "--size", "96", "-o", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(args + (["--space", space_path] if space_path else []))
    assert exit_info.value.code == 0, capsys.readouterr().err
    image = np.asarray(Image.open(out).convert("RGB"))
    cells = 1 + len(space.hands)
    assert image.shape[1] == 96 * min(cells, 5)
    assert_framed(image, "decode grid", lo=0.02)


@needs_space
def test_interpolation_animates_every_hand(tmp_path, capsys, space_path):
    from PIL import Image
    from xlhand.cli.main import main

    out = tmp_path / "interp.gif"
    args = ["render", "interpolate", "--hands", "inspire,xhand", "--frames", "4", "--size", "64", "-o", str(out)]
    with pytest.raises(SystemExit) as exit_info:
        main(args + (["--space", space_path] if space_path else []))
    assert exit_info.value.code == 0, capsys.readouterr().err
    with Image.open(out) as im:
        assert im.n_frames == 4 and im.size[0] == 128
        im.seek(0)
        first = np.asarray(im.convert("RGB"))
        im.seek(3)
        last = np.asarray(im.convert("RGB"))
    assert not np.array_equal(first, last), "the hands did not move along the latent path"
