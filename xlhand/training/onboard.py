"""Onboard a new hand into a frozen space: fit its adapter, report its quality, optionally plug it into a bundle.

Every existing adapter stays frozen (bit for bit). The new adapter trains with the same loop as pretraining
(:func:`xlhand.training.fit`), restricted to the pairs that involve the new hand: reconstruction, retargeting into
the new hand (latents of frozen hands' samples -> new decoder; those latents and geometry are precomputed once),
retargeting out of it (new encoder -> frozen decoders), and KL. Two initialisations of the new adapter are tried
for a few hundred steps first and the better one continues (:func:`fit_new_adapter`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch

from xlhand._util.revision import source_revision
from xlhand.bundle.store import create_bundle, create_prebuilt_bundle, plug
from xlhand.policy.prebuilt import prebuilt_policy
from xlhand.errors import XlhandError
from xlhand.hand.model import Hand, hand_from_spec, spec_for_urdf
from xlhand.latent.adapter import Adapter
from xlhand.latent.adapter_file import save_adapter
from xlhand.latent.losses import shared_pairs
from xlhand.latent.metrics import evaluate, summarize
from xlhand.latent.space import Space
from xlhand.loading import load_space
from xlhand.registry import load_hand, registry
from xlhand.training.checkpoints import checkpoint_extra, checkpoint_path_for
from xlhand.training.config import FitConfig
from xlhand.training.data import fit_data
from xlhand.training.loop import StepCallback, fit

# Small batches, many steps, a quarter of pinch templates: evidence in docs/decisions.md (onboarding).
ONBOARD_DEFAULTS = FitConfig(steps=3700, batch=128, lr=6e-3, pinch_probability=0.25, pool=32768,
                             checkpoint_every=1000)

# Two initialisations train PROBE_STEPS steps on the same batches; the one with the lower loss over the
# last third of the probe continues (why: docs/decisions.md).
INITS = ("default", "zero-mean-head")  # default: PyTorch's init; zero-mean-head: every latent starts at 0
PROBE_STEPS = 300


@dataclass
class OnboardResult:
    hand: Hand
    space: Space
    adapter_path: Path
    report: dict
    bundle: Path | None = None


def resolve_hand(target: str | Path | Hand, name: str | None = None,
                 fingertips: dict[str, str] | None = None) -> tuple[Hand, dict]:
    """The hand to onboard and the record of where it came from (stored in the adapter)."""
    if isinstance(target, Hand):
        return target, {"registered": target.name}
    text = str(target)
    if text in registry().hands and not Path(text).exists():
        if fingertips:
            raise XlhandError("--fingertip applies to a bare URDF; a registered hand has its own fingertip map")
        return load_hand(text), {"registered": text}
    path = Path(text)
    if path.suffix == ".toml" or path.is_dir():
        hand = load_hand(path)
        if fingertips or (name and name != hand.name):
            raise XlhandError("--name and --fingertip apply to a bare URDF; edit the hand.toml instead", path)
        toml = path if path.suffix == ".toml" else path / "hand.toml"
        return hand, {"hand_toml": str(toml.resolve())}
    if not path.exists():
        load_hand(text)  # raises the right error (unknown name or missing file)
    hand = hand_from_spec(spec_for_urdf(path, name=name, fingertips=fingertips))
    return hand, {"urdf": str(path.resolve()), "name": hand.name, "fingertips": dict(fingertips or {})}


def onboard(
    target: str | Path | Hand,
    *,
    name: str | None = None,
    fingertips: dict[str, str] | None = None,
    space: str | Path | None = None,
    bundle: str | Path | None = None,
    out: str | Path | None = None,
    steps: int | None = None,
    seed: int = 0,
    resume: bool = False,
    on_step: StepCallback | None = None,
    oracle: bool = True,
    config: FitConfig | None = None,
    report_n: int = 10_000,
) -> OnboardResult:
    """Fit ``target`` (a bare URDF, a ``hand.toml`` or a registered name) into a frozen space or bundle.

    A ``bundle`` directory that does not exist yet is created once the fit has succeeded (the prebuilt VLA
    bundle: the shipped default space and its policy; or, with ``space``, around that space without a policy),
    and the adapter is plugged into it.
    """
    new_bundle = bundle is not None and not Path(bundle).exists()
    if space is not None and bundle is not None and not new_bundle:
        raise XlhandError("the bundle exists and has its own space; give either --space or --bundle", bundle)
    sp = load_space(bundle if bundle is not None and not new_bundle else space)
    hand, source = resolve_hand(target, name, fingertips)
    if hand.name in sp.hands:
        raise XlhandError(f"the space already has a hand named {hand.name!r}; choose another with --name")
    if not any(shared_pairs(hand, sp.hand(h)) for h in sp.hands):
        raise XlhandError(f"hand {hand.name!r} shares no finger pair with any hand in the space "
                          f"(its fingers: {', '.join(hand.fingers)})", hand.urdf_path)
    out = Path(out) if out is not None else Path(f"{hand.name}.adapter.safetensors")
    cfg = replace(config or ONBOARD_DEFAULTS, seed=seed, **({"steps": steps} if steps is not None else {}))

    sp.hands_by_name[hand.name] = hand
    sp.sources[hand.name] = source

    t0 = time.perf_counter()
    init = fit_new_adapter(sp, hand, cfg, checkpoint_path_for(out), resume=resume, on_step=on_step)
    fit_seconds = time.perf_counter() - t0
    report = onboarding_report(sp, hand.name, seed=seed, oracle=oracle, n=report_n)
    report["fit_seconds"] = round(fit_seconds, 1)
    report["init"] = init
    provenance = {"made_by": "xlhand onboard", "steps": cfg.steps, "seed": seed, "revision": source_revision(),
                  "config": asdict(cfg), "init": init}
    save_adapter(out, sp, hand.name, source, report, provenance)
    checkpoint_path_for(out).unlink(missing_ok=True)
    if bundle is not None:
        if new_bundle:
            if space is None and prebuilt_policy() is not None:
                create_prebuilt_bundle(bundle)
            else:
                create_bundle(bundle, space)
        plug(bundle, out, hand)
    return OnboardResult(hand, sp, out, report, Path(bundle) if bundle is not None else None)


def probe_steps(steps: int) -> int:
    """Steps each initialisation is probed for in a fit of ``steps`` (a tenth of a short fit; 0: no probe)."""
    return min(PROBE_STEPS, steps // 10)


def progress_total(steps: int) -> int:
    """The steps :func:`onboard` reports to ``on_step`` in all (the probes, then the rest of the fit)."""
    return steps + (len(INITS) - 1) * probe_steps(steps)


def new_adapter(space: Space, hand: Hand, seed: int, init: str) -> Adapter:
    """The new hand's adapter before training (deterministic for a seed; see :data:`INITS`)."""
    rng = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        adapter = Adapter(hand.dof, space.latent_dim, space.hidden)
    finally:
        torch.random.set_rng_state(rng)
    if init == "zero-mean-head":
        with torch.no_grad():
            adapter.mean_head.weight.zero_()
            adapter.mean_head.bias.zero_()
    elif init != "default":
        raise ValueError(f"unknown initialisation {init!r}")
    return adapter


def fit_new_adapter(space: Space, hand: Hand, cfg: FitConfig, ckpt: Path, *, resume: bool = False,
                    on_step: StepCallback | None = None) -> dict:
    """Train ``hand``'s adapter (added to ``space``) with the others frozen; returns how it was initialised.

    Each of :data:`INITS` trains for :func:`probe_steps` steps (same batches) and saves a checkpoint; the one with
    the lower mean loss over the last third of the probe continues to ``cfg.steps``, through the resume path, so
    the result is the same as a run from that initialisation alone. ``on_step`` sees steps 1 to
    :func:`progress_total`. ``resume`` continues from ``ckpt`` if a run left one (an interrupted probe leaves
    none and starts again).
    """
    name, probe = hand.name, probe_steps(cfg.steps)
    offset = (len(INITS) - 1) * probe

    def shifted(k: int) -> StepCallback | None:
        return None if on_step is None else (lambda step, terms: on_step(step + k, terms))

    if resume and ckpt.exists():
        init = checkpoint_extra(ckpt).get("init") or {"chosen": INITS[0]}
        space.adapters[name] = new_adapter(space, hand, cfg.seed, init["chosen"])  # overwritten by the checkpoint
        fit(space, [name], cfg, checkpoint=ckpt, resume=True, on_step=shifted(offset), extra={"init": init})
        return init
    if probe == 0:
        init = {"chosen": INITS[0]}
        space.adapters[name] = new_adapter(space, hand, cfg.seed, INITS[0])
        fit(space, [name], cfg, checkpoint=ckpt, on_step=on_step, extra={"init": init})
        return init
    window = max(1, probe // 3)
    space.adapters[name] = new_adapter(space, hand, cfg.seed, INITS[0])
    data = fit_data(space, [name], cfg)  # samples and pools do not depend on the new adapter's weights
    losses: dict[str, float] = {}
    files = {i: ckpt.with_name(f"{ckpt.name}.{i}") for i in INITS}
    try:
        for k, i in enumerate(INITS):
            seen: list[float] = []

            def record(step: int, terms: dict, k: int = k, seen: list = seen) -> None:
                seen.append(terms["loss"])
                if on_step is not None:
                    on_step(step + k * probe, terms)

            space.adapters[name] = new_adapter(space, hand, cfg.seed, i)
            fit(space, [name], cfg, checkpoint=files[i], on_step=record, stop_at=probe, data=data,
                extra={"init": {"chosen": i, "probe_steps": probe}})
            losses[i] = sum(seen[-window:]) / window
        chosen = min(INITS, key=lambda i: losses[i])
        init = {"chosen": chosen, "probe_steps": probe,
                "probe_loss": {i: round(v, 6) for i, v in losses.items()}}
        files[chosen].replace(ckpt)
    finally:
        for f in files.values():
            f.unlink(missing_ok=True)
    fit(space, [name], cfg, checkpoint=ckpt, resume=True, on_step=shifted(offset), extra={"init": init},
        data=data)
    return init


def onboarding_report(space: Space, new: str, seed: int = 0, oracle: bool = True, n: int = 10_000,
                      oracle_n: int = 300) -> dict:
    """Quality of ``new`` against every other hand, next to the pairs among the other hands themselves.

    One :func:`~xlhand.latent.metrics.evaluate` over the pairs that involve ``new`` (with the oracle) and the pairs
    among the existing hands (without it), on the same samples.
    """
    others = [h for h in space.hands if h != new]
    new_pairs = [(a, b) for h in others for a, b in ((new, h), (h, new))]
    among = [(a, b) for a in others for b in others if a != b]
    metrics = evaluate(space, space.hands, seed=seed, n=n, oracle=oracle, oracle_n=oracle_n,
                       pairs=new_pairs + among, per_hand=[new], oracle_pairs=new_pairs)
    mine, base = summarize(metrics["transfer"], new_pairs), summarize(metrics["transfer"], among)
    hand = space.hand(new)
    notes = []
    if "thumb" not in hand.fingers:
        notes.append(f"{new} has no thumb: it is compared on index-to-finger vectors with the fingers it shares "
                     "with each hand, not on thumb pinches")
    for h in others:
        if not shared_pairs(hand, space.hand(h)):
            notes.append(f"{new} and {h} share no finger pair; no retargeting between them")
    summary = {}
    for kind in ("random", "pinch"):
        s_new, s_base = mine.get(kind), base.get(kind)
        if s_new is None:
            continue
        summary[kind] = {"new_dist_mm": s_new["dist_mm"], "new_dir_deg": s_new["dir_deg"],
                         "existing_dist_mm": s_base["dist_mm"] if s_base else None,
                         "existing_dir_deg": s_base["dir_deg"] if s_base else None}
        if "ratio_dist" in s_new:
            summary[kind]["ratio_dist"] = s_new["ratio_dist"]
            summary[kind]["ratio_dir"] = s_new["ratio_dir"]
    metrics["summary"] = mine
    return {"hand": new, "fingers": hand.fingers, "notes": notes, "summary": summary, "metrics": metrics,
            "existing_pairs": base}
