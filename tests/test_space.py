"""The latent space: model shapes, file format, integrity checks, losses, training determinism and resume."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import xlhand
from xlhand.cli.main import main
from xlhand.latent.losses import retarget_loss, shared_pairs
from xlhand.latent.space import LossSettings, Space
from xlhand.loading import load_space
from xlhand.hand.poses import pinch_templates
from xlhand.training.config import FitConfig
from xlhand.training.checkpoints import checkpoint_path_for
from xlhand.training.loop import fit

TINY = FitConfig(steps=12, batch=64, templates=32, pool=256, checkpoint_every=5, seed=3)


@pytest.fixture
def small_space():
    return Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("paxini")], seed=1)


def run_cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out = capsys.readouterr()
    return exc.value.code, out.out, out.err


def test_encode_decode_shapes_and_limits(small_space):
    hand = small_space.hand("paxini")
    q = hand.sample(50)
    mean, logvar = small_space.encode("paxini", q)
    assert mean.shape == logvar.shape == (50, 32)
    back = small_space.decode("paxini", torch.randn(50, 32) * 10)
    assert back.shape == (50, 16)
    assert torch.all(back >= hand.lower - 1e-6) and torch.all(back <= hand.upper + 1e-6)


def test_save_load_round_trip_keeps_weights_and_metadata(small_space, tmp_path):
    path = small_space.save(tmp_path / "s.safetensors")
    loaded = load_space(path)
    assert loaded.hands == ["inspire", "paxini"]
    assert loaded.fingerprint == small_space.fingerprint
    q = loaded.hand("inspire").sample(8)
    assert torch.equal(loaded.encode("inspire", q)[0], small_space.encode("inspire", q)[0])
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["xlhand"])
    assert meta["format_version"] == 1 and meta["latent_dim"] == 32
    assert meta["adapters"]["paxini"]["fingers"] == ["thumb", "index", "middle", "ring"]
    assert meta["adapters"]["inspire"]["kinematics_hash"] == xlhand.load_hand("inspire").kinematics_hash
    assert set(meta["loss"]) == {"rec", "dis", "dir", "dis_exp", "kl"}


def test_truncated_space_file_is_one_line_error(small_space, tmp_path, capsys):
    path = small_space.save(tmp_path / "s.safetensors")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, _, err = run_cli(["eval", "--space", str(path), "--n", "10", "--no-oracle"], capsys)
    assert code == 1 and err.count("\n") == 1 and str(path) in err and "not a readable safetensors file" in err


def test_corrupted_weights_fail_the_fingerprint_check(small_space, tmp_path, capsys):
    path = small_space.save(tmp_path / "s.safetensors")
    with safe_open(str(path), "pt") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    key = sorted(tensors)[0]
    tensors[key] = tensors[key] + 1e-3
    save_file(tensors, str(path), metadata=meta)
    code, _, err = run_cli(["eval", "--space", str(path), "--n", "10", "--no-oracle"], capsys)
    assert code == 1 and str(path) in err and "fingerprint" in err and err.count("\n") == 1


def test_space_naming_a_hand_with_other_kinematics_is_refused(small_space, tmp_path, capsys):
    path = small_space.save(tmp_path / "s.safetensors")
    with safe_open(str(path), "pt") as f:
        meta = json.loads(f.metadata()["xlhand"])
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    meta["adapters"]["inspire"]["kinematics_hash"] = "0123456789abcdef"
    save_file(tensors, str(path), metadata={"xlhand": json.dumps(meta)})
    code, _, err = run_cli(["eval", "--space", str(path), "--n", "10", "--no-oracle"], capsys)
    assert code == 1 and str(path) in err and "kinematics hash" in err and "'inspire'" in err


def test_file_that_is_not_a_space(tmp_path, capsys):
    path = tmp_path / "plain.safetensors"
    save_file({"w": torch.zeros(3)}, str(path))
    code, _, err = run_cli(["eval", "--space", str(path), "--n", "10"], capsys)
    assert code == 1 and "without xlhand metadata" in err


def test_shared_pairs_compare_only_fingers_both_hands_have():
    inspire, paxini = xlhand.load_hand("inspire"), xlhand.load_hand("paxini")
    assert shared_pairs(inspire, paxini) == [("thumb", "index"), ("thumb", "middle"), ("thumb", "ring")]
    assert shared_pairs(inspire, inspire)[-1] == ("thumb", "little")


def test_retarget_loss_is_zero_for_identical_geometry_and_weights_pinches():
    d = torch.tensor([[[0.01, 0.0, 0.0]], [[0.10, 0.0, 0.0]]])
    loss = LossSettings()
    assert retarget_loss(d, d, loss) == 0
    # the same 5 mm length error costs more on the pinch (1 cm) than on the open pose (10 cm)
    near = retarget_loss(d[:1], d[:1] * 1.5, loss)
    far = retarget_loss(d[1:], d[1:] + torch.tensor([0.005, 0, 0]), loss)
    assert near > far > 0
    # direction: a perpendicular vector costs dir * w
    perp = torch.tensor([[[0.0, 0.01, 0.0]]])
    assert math.isclose(float(retarget_loss(d[:1], perp, loss)), loss.dir * math.exp(-loss.dis_exp * 0.01),
                        rel_tol=1e-5)


def test_pinch_templates_are_real_pinches():
    hand = xlhand.load_hand("xhand")
    q = pinch_templates(hand, 256, torch.Generator().manual_seed(0))
    assert torch.all(q >= hand.lower - 1e-6) and torch.all(q <= hand.upper + 1e-6)
    tips = hand.fingertips(q)
    d = (tips[:, 1:] - tips[:, :1]).norm(dim=-1).min(dim=1).values
    assert (d < 0.02).float().mean() > 0.8  # thumb within 2 cm of a fingertip
    uniform = hand.fingertips(hand.sample(256, generator=torch.Generator().manual_seed(0)))
    du = (uniform[:, 1:] - uniform[:, :1]).norm(dim=-1).min(dim=1).values
    assert (du < 0.02).float().mean() < 0.1


def test_training_reduces_loss_and_is_deterministic(small_space):
    cfg = replace(TINY, steps=40)
    a = Space.new([small_space.hand("inspire"), small_space.hand("paxini")], seed=1)
    b = Space.new([small_space.hand("inspire"), small_space.hand("paxini")], seed=1)
    losses = []
    fit(a, a.hands, cfg, on_step=lambda s, l: losses.append(l["loss"]))
    fit(b, b.hands, cfg)
    assert a.fingerprint == b.fingerprint
    assert sum(losses[-5:]) < sum(losses[:5])


def test_resume_from_checkpoint_equals_an_uninterrupted_run(tmp_path):
    hands = [xlhand.load_hand("inspire"), xlhand.load_hand("ability")]
    full = Space.new(hands, seed=2)
    fit(full, full.hands, TINY)

    ckpt = tmp_path / "run.ckpt"
    part = Space.new(hands, seed=2)

    def interrupt(step, _):
        if step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        fit(part, part.hands, TINY, checkpoint=ckpt, on_step=interrupt)
    assert ckpt.exists()
    resumed = Space.new(hands, seed=2)
    fit(resumed, resumed.hands, TINY, checkpoint=ckpt, resume=True)
    assert resumed.fingerprint == full.fingerprint


def test_frozen_adapters_stay_bit_for_bit(small_space):
    before = {k: v.clone() for k, v in small_space.tensors(["paxini"]).items()}
    fit(small_space, ["inspire"], TINY)
    after = small_space.tensors(["paxini"])
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_pretrain_cli_interrupt_leaves_no_output_and_resumes(tmp_path, capsys, monkeypatch):
    import xlhand.training.pretrain as pt

    monkeypatch.setattr(pt, "PRETRAIN_DEFAULTS", replace(TINY, steps=10))
    out = tmp_path / "space.safetensors"
    calls = {"n": 0}
    real_fit = pt.fit

    def fit_then_interrupt(space, trainable, cfg, **kw):
        def on_step(step, losses):
            kw["on_step"](step, losses)
            if step == 6 and calls["n"] == 1:  # the first run only
                raise KeyboardInterrupt
        calls["n"] += 1
        return real_fit(space, trainable, cfg, **{**kw, "on_step": on_step})

    monkeypatch.setattr(pt, "fit", fit_then_interrupt)
    code, _, err = run_cli(["pretrain", "--hands", "inspire,ability", "-o", str(out)], capsys)
    assert code == 130 and not out.exists() and checkpoint_path_for(out).exists()
    assert "--resume" in err
    code, outp, _ = run_cli(["pretrain", "--hands", "inspire,ability", "--resume", "-o", str(out)], capsys)
    assert code == 0 and out.exists() and not checkpoint_path_for(out).exists()
    space = load_space(out)
    assert space.provenance["steps"] == 10 and space.provenance["seed"] == 0
    assert "--resume" in space.provenance["command"] or "pretrain" in space.provenance["command"]


def test_compare_is_error_by_error_on_the_same_samples(small_space):
    from xlhand.latent.metrics import compare, evaluate

    other = Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("paxini")], seed=2)
    a = evaluate(small_space, n=400, oracle=False)
    b = evaluate(other, n=400, oracle=False)
    c = compare(a, b)
    rows = {(r["poses"], r["from"], r["to"], r["metric"]): r for r in c["transfer"]}
    expected = {(kind, s, t, m) for kind in ("random", "pinch") for s, row in a["transfer"][kind].items()
                for t, e in row.items() if "dist_mm" in e and "dist_mm" in b["transfer"][kind][s][t]
                for m in ("dist_mm", "dir_deg")}
    assert set(rows) == expected and len(rows) >= 4  # at least the random poses, both ways, both errors
    for (kind, s, t, m), r in rows.items():
        assert r["value"] == a["transfer"][kind][s][t][m] and r["against"] == b["transfer"][kind][s][t][m]
        assert r["at_least_as_good"] == (r["value"] <= r["against"])
    assert c["at_least_as_good"] == sum(r["at_least_as_good"] for r in rows.values()) and c["compared"] == len(rows)
    rmse = {h: (a["reconstruction"][h]["joint_rmse_rad"], b["reconstruction"][h]["joint_rmse_rad"])
            for h in a["space"]["hands"]}
    ratios = {h: e["ratio"] for h, e in c["reconstruction"].items()}
    assert ratios == pytest.approx({h: x / y for h, (x, y) in rmse.items()})
    same = compare(a, a)  # equal errors count as at least as good
    assert same["at_least_as_good"] == same["compared"] == len(rows)
    with pytest.raises(ValueError, match="seed"):
        compare(a, evaluate(other, n=400, oracle=False, seed=1))
    moved = json.loads(json.dumps(b))
    moved["space"]["kinematics"]["paxini"] = "0123456789abcdef"
    with pytest.raises(ValueError, match="'paxini' has other kinematics"):
        compare(a, moved)


def test_eval_against_prints_and_writes_the_comparison(small_space, tmp_path, capsys):
    mine = small_space.save(tmp_path / "mine.safetensors")
    theirs = Space.new([xlhand.load_hand("inspire"), xlhand.load_hand("paxini")], seed=2)
    theirs = theirs.save(tmp_path / "theirs.safetensors")
    out = tmp_path / "cmp.json"
    code, stdout, err = run_cli(["eval", "--space", str(mine), "--against", str(theirs), "--n", "400", "--no-oracle",
                                 "--report", str(out)], capsys)
    assert code == 0, err
    c = json.loads(out.read_text())["comparison"]
    assert c["space"] == str(mine) and c["against"] == str(theirs) and c["compared"] == len(c["transfer"]) >= 4
    line = f"at least as good on {c['at_least_as_good']} of {c['compared']} cross-hand errors"
    assert line in " ".join(stdout.split())


def test_eval_against_a_space_without_the_hand_is_one_line_error(small_space, tmp_path, capsys):
    mine = small_space.save(tmp_path / "mine.safetensors")
    theirs = Space.new([xlhand.load_hand("inspire")], seed=2).save(tmp_path / "theirs.safetensors")
    code, _, err = run_cli(["eval", "--space", str(mine), "--against", str(theirs), "--n", "10", "--no-oracle"],
                           capsys)
    assert code == 1 and err.count("\n") == 1 and str(theirs) in err and "'paxini' is not in this space" in err
