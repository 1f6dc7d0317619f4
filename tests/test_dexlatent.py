"""Importing the reference (DexLatent) checkpoint: parity with the network evaluated from its raw tensors."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import xlhand
from xlhand.cli.main import main
from xlhand.latent.dexlatent import HANDS, import_dexlatent

from conftest import SHARED, require_shared

CKPT = SHARED / "reference" / "dexlatent" / "Checkpoints" / "20260311_225425" / "checkpoint_epoch_1000.pt"
DEMO = SHARED / "reference" / "dexlatent" / "Dataset" / "demo.npz"


@pytest.fixture(scope="module")
def ckpt():
    require_shared(CKPT)
    return torch.load(str(CKPT), map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def imported():
    require_shared(CKPT)
    return import_dexlatent(CKPT)


def _block(sd, prefix, h, idx):
    for i in idx:
        h = F.linear(h, sd[f"{prefix}.{i}.weight"], sd[f"{prefix}.{i}.bias"])
        h = F.layer_norm(h, (h.shape[-1],), sd[f"{prefix}.{i + 1}.weight"], sd[f"{prefix}.{i + 1}.bias"])
        h = torch.relu(h)
    return h


def ref_encode(sd, hand, x):
    h = _block(sd, f"{hand}.hand_encoder_backbone", x, (0, 3, 6))
    return F.linear(h, sd[f"{hand}.hand_mean_head.weight"], sd[f"{hand}.hand_mean_head.bias"])


def ref_decode(sd, hand, z):
    h = _block(sd, f"{hand}.hand_decoder", z, (0, 3, 6))
    return torch.tanh(F.linear(h, sd[f"{hand}.hand_decoder.9.weight"], sd[f"{hand}.hand_decoder.9.bias"]))


def test_import_matches_reference_network_on_10000_configurations(ckpt, imported):
    sd = {k: v.float() for k, v in ckpt["autoencoders"].items()}
    gen = torch.Generator().manual_seed(0)
    assert sorted(imported.hands) == sorted(HANDS.values())
    for ref_name, name in HANDS.items():
        hand = imported.hand(name)
        q = hand.sample(10_000, generator=gen)
        x = hand.normalize(q)
        mean, _ = imported.encode(name, q)
        assert (mean - ref_encode(sd, ref_name, x)).abs().max() < 1e-5
        z = torch.randn(10_000, imported.latent_dim, generator=gen)
        ours = hand.normalize(imported.decode(name, z))
        assert (ours - ref_decode(sd, ref_name, z)).abs().max() < 1e-5


def test_demo_inspire_trajectory_round_trips(imported):
    require_shared(DEMO)
    demo = np.load(DEMO)
    hand = imported.hand("inspire")
    q = torch.tensor(demo["right_qpos"][:, 7:13], dtype=torch.float32)
    assert q.shape == (792, hand.dof)
    q = torch.max(torch.min(q, hand.upper), hand.lower)  # the recording sits on the limits at times
    mean, _ = imported.encode("inspire", q)
    back = imported.decode("inspire", mean)
    err = (back - q).abs()
    assert err.mean() < 0.05, float(err.mean())  # radians
    assert err.max() < 0.25, float(err.max())
    # the decoded trajectory follows the demo: fingertip paths agree to a few millimetres on average
    tips_err = (hand.fingertips(back) - hand.fingertips(q)).norm(dim=-1).mean()
    assert tips_err < 0.005, float(tips_err)


def test_import_cli_writes_a_loadable_space(tmp_path, capsys):
    require_shared(CKPT)
    out = tmp_path / "ref.safetensors"
    with pytest.raises(SystemExit) as exc:
        main(["import", "dexlatent", str(CKPT), "-o", str(out)])
    assert exc.value.code == 0
    space = xlhand.load_space(out)
    assert sorted(space.hands) == ["ability", "inspire", "paxini", "xhand"]
    assert space.loss.kl == 0.0 and space.loss.dis == 2000.0
    assert space.provenance["epoch"] == 1000


def test_checkpoint_not_in_reference_format_is_refused(tmp_path, capsys):
    bad = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, bad)
    with pytest.raises(SystemExit) as exc:
        main(["import", "dexlatent", str(bad), "-o", str(tmp_path / "x.safetensors")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "not the DexLatent format" in err
    assert not (tmp_path / "x.safetensors").exists()


class Gadget:
    """Something only a full pickle can rebuild."""


def test_pickle_refused_by_weights_only(tmp_path, capsys):
    bad = tmp_path / "evil.pt"
    bad.write_bytes(pickle.dumps({"autoencoders": Gadget(), "hand_names": [], "config": {}}))
    with pytest.raises(SystemExit) as exc:
        main(["import", "dexlatent", str(bad), "-o", str(tmp_path / "x.safetensors")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(bad) in err and "weights_only" in err
