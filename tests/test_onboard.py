"""Onboarding a hand into a frozen space, adapters and bundles."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace

import pytest
import torch

import xlhand
from xlhand.latent.adapter_file import read_adapter
from xlhand.bundle.store import create_bundle, load_bundle_space, plug
from xlhand.cli.main import main
from xlhand.errors import XlhandError
from xlhand.training.onboard import INITS, new_adapter, onboard, progress_total
from xlhand.latent.space import Space
from xlhand.loading import load_space
from xlhand.training.config import FitConfig
from xlhand.training.checkpoints import checkpoint_path_for
from xlhand.training.loop import fit

from conftest import FIXTURE_HANDS, require_shared

QUICK = FitConfig(steps=15, batch=64, templates=32, pool=256, checkpoint_every=5)


@pytest.fixture(scope="module")
def space_file(tmp_path_factory):
    """A small (untrained) two-hand space file: onboarding mechanics do not depend on its quality."""
    path = tmp_path_factory.mktemp("space") / "base.safetensors"
    Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("xhand")], seed=0).save(path)
    return path


def fixture_urdfs():
    root = require_shared(FIXTURE_HANDS)
    return sorted(root.glob("*/*.urdf"))


def test_onboard_every_fixture_hand_from_its_bare_urdf(space_file, tmp_path):
    base = load_space(space_file)
    for urdf in fixture_urdfs():
        out = tmp_path / f"{urdf.stem}.safetensors"
        result = onboard(urdf, space=space_file, out=out, config=QUICK, report_n=500, oracle=False)
        tensors, meta = read_adapter(out)
        assert meta["space_fingerprint"] == base.fingerprint
        assert meta["hand"] == result.hand.name
        kinds = result.report["metrics"]["transfer"]["random"]
        assert kinds, urdf  # at least one pair compared
        assert result.report["summary"]["random"]["new_dist_mm"] >= 0
        if "thumb" not in result.hand.fingers:
            assert any("no thumb" in n for n in result.report["notes"])


def test_existing_adapters_are_bit_for_bit_unchanged(space_file, tmp_path):
    before = load_space(space_file)
    result = onboard("ability", space=space_file, out=tmp_path / "a.safetensors", config=QUICK, report_n=500, oracle=False)
    for name in before.hands:
        old, new = before.tensors([name]), result.space.tensors([name])
        assert all(torch.equal(old[k], new[k]) for k in old)
    assert result.space.fingerprint == before.fingerprint


def test_fixed_seed_reproduces_the_adapter(space_file, tmp_path):
    a = onboard("ability", space=space_file, out=tmp_path / "a.safetensors", config=QUICK, report_n=500, seed=4, oracle=False)
    b = onboard("ability", space=space_file, out=tmp_path / "b.safetensors", config=QUICK, report_n=500, seed=4, oracle=False)
    assert read_adapter(a.adapter_path)[1]["fingerprint"] == read_adapter(b.adapter_path)[1]["fingerprint"]


def test_adapter_refuses_a_bundle_with_another_space(space_file, tmp_path, capsys):
    adapter = onboard("ability", space=space_file, out=tmp_path / "a.safetensors", config=QUICK, report_n=500,
                      oracle=False).adapter_path
    other = tmp_path / "other.safetensors"
    Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("xhand")], seed=99).save(other)
    bundle = tmp_path / "bundle"
    create_bundle(bundle, other)
    before = (bundle / "config.json").read_text()
    with pytest.raises(SystemExit) as exc:
        main(["bundle", "plug", str(bundle), str(adapter)])
    assert exc.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fitted to space" in err and str(adapter) in err
    assert (bundle / "config.json").read_text() == before
    assert not (bundle / "adapters" / "ability.safetensors").exists()


def test_bundle_keeps_the_hand_so_it_loads_without_the_original_urdf(space_file, tmp_path):
    src = require_shared(FIXTURE_HANDS / "allegro_hand")
    copy = tmp_path / "allegro"
    shutil.copytree(src, copy)
    bundle = tmp_path / "bundle"
    result = onboard(copy / "allegro_hand_right.urdf", name="allegro", space=space_file,
                     out=tmp_path / "allegro.safetensors", bundle=bundle, config=QUICK, report_n=500, oracle=False)
    assert result.bundle == bundle
    config = json.loads((bundle / "config.json").read_text())
    assert config["hands"]["allegro"]["kinematics"] == {"hand_toml": "hands/allegro/hand.toml"}
    z = torch.randn(5, 32)
    expected = result.space.decode("allegro", z)
    shutil.rmtree(copy)  # the original URDF and meshes are gone
    loaded = xlhand.load_space(bundle)
    assert sorted(loaded.hands) == ["allegro", "inspire", "xhand"]
    assert loaded.hand("allegro").kinematics_hash == result.hand.kinematics_hash
    assert torch.equal(loaded.decode("allegro", z), expected)
    assert (bundle / "hands" / "allegro" / "meshes" / "visual" / "link_0.0.obj").exists()


def test_interrupted_onboarding_leaves_no_adapter_or_bundle_and_resumes(space_file, tmp_path):
    out = tmp_path / "ability.safetensors"
    bundle = tmp_path / "bundle"

    def interrupt(step, _):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        onboard("ability", space=space_file, out=out, bundle=bundle, config=QUICK, report_n=500, on_step=interrupt, oracle=False)
    assert not out.exists() and not bundle.exists()
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_path_for(out).name]
    resumed = onboard("ability", space=space_file, out=out, bundle=bundle, config=QUICK, report_n=500, resume=True, oracle=False)
    fresh = onboard("ability", space=space_file, out=tmp_path / "fresh.safetensors", config=QUICK, report_n=500, oracle=False)
    assert read_adapter(resumed.adapter_path)[1]["fingerprint"] == read_adapter(fresh.adapter_path)[1]["fingerprint"]
    assert resumed.report["init"] == fresh.report["init"]  # the probe's outcome travels in the checkpoint
    assert not checkpoint_path_for(out).exists()
    assert "ability" in load_bundle_space(bundle).hands


def test_onboarding_continues_the_initialisation_with_the_lower_probe_loss(space_file, tmp_path):
    cfg = replace(QUICK, steps=40)  # probes of 4 steps
    seen = []
    result = onboard("ability", space=space_file, out=tmp_path / "a.safetensors", config=cfg, report_n=500,
                     oracle=False, on_step=lambda step, _: seen.append(step))
    init = result.report["init"]
    assert sorted(init["probe_loss"]) == sorted(INITS) and init["probe_steps"] == 4
    assert init["chosen"] == min(INITS, key=init["probe_loss"].get)
    assert read_adapter(result.adapter_path)[1]["provenance"]["init"] == init
    assert seen == list(range(1, progress_total(40) + 1)) and progress_total(40) == 44
    # the adapter is the one a plain, unprobed run from the chosen initialisation gives
    plain, hand = load_space(space_file), xlhand.load_hand("ability")
    plain.adapters["ability"] = new_adapter(plain, hand, 0, init["chosen"])
    plain.hands_by_name["ability"] = hand
    fit(plain, ["ability"], cfg)
    got, want = result.space.tensors(["ability"]), plain.tensors(["ability"])
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)


@pytest.mark.parametrize("at", [2, 6])  # in the first and in the second initialisation's probe
def test_interrupted_probe_leaves_nothing_and_resume_starts_again(space_file, tmp_path, at):
    cfg = replace(QUICK, steps=40)
    out = tmp_path / "ability.safetensors"

    def interrupt(step, _):
        if step == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        onboard("ability", space=space_file, out=out, config=cfg, report_n=500, on_step=interrupt, oracle=False)
    assert list(tmp_path.iterdir()) == []
    resumed = onboard("ability", space=space_file, out=out, config=cfg, report_n=500, resume=True, oracle=False)
    fresh = onboard("ability", space=space_file, out=tmp_path / "fresh.safetensors", config=cfg, report_n=500,
                    oracle=False)
    assert read_adapter(resumed.adapter_path)[1]["fingerprint"] == read_adapter(fresh.adapter_path)[1]["fingerprint"]
    assert resumed.report["init"] == fresh.report["init"]


def test_plug_into_existing_bundle_is_atomic_and_checked(space_file, tmp_path):
    bundle = tmp_path / "bundle"
    create_bundle(bundle, space_file)
    adapter = onboard("ability", space=space_file, out=tmp_path / "a.safetensors", config=QUICK, report_n=500,
                      oracle=False).adapter_path
    plug(bundle, adapter, xlhand.load_hand("ability"))
    config = json.loads((bundle / "config.json").read_text())
    assert config["hands"]["ability"]["kinematics"] == {"registered": "ability"}
    with pytest.raises(XlhandError, match="already has an adapter"):
        plug(bundle, adapter, xlhand.load_hand("ability"))
    assert sorted(p.name for p in bundle.iterdir()) == ["README.md", "adapters", "config.json", "space.safetensors"]


def test_onboard_cli_reports_and_writes_json(space_file, tmp_path, capsys, monkeypatch):
    import xlhand.training.onboard as ob

    monkeypatch.setattr(ob, "ONBOARD_DEFAULTS", QUICK)
    report = tmp_path / "report.json"
    with pytest.raises(SystemExit) as exc:
        main(["onboard", str(require_shared(FIXTURE_HANDS) / "panda_gripper" / "panda_gripper_glb.urdf"),
              "--space", str(space_file), "-o", str(tmp_path / "panda.safetensors"), "--report", str(report),
              "--no-oracle"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "panda_gripper_glb" in out and "thumb" in out and "wrote" in out
    data = json.loads(report.read_text())
    assert f"initialisation: {data['init']['chosen']} (loss after 1 steps" in out
    # a parallel gripper is compared on its single thumb-index pair
    assert data["metrics"]["transfer"]["random"]["panda_gripper_glb"]["inspire"]["pairs"] == ["thumb-index"]


def test_onboard_refuses_a_hand_already_in_the_space(space_file, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["onboard", "inspire", "--space", str(space_file), "-o", str(tmp_path / "x.safetensors")])
    assert exc.value.code == 1
    assert "already has a hand named 'inspire'" in capsys.readouterr().err
