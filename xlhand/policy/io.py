"""Policy files: safetensors weights (normalisation statistics among them) and JSON metadata: the format, the
model's configuration (its instruction vocabulary included), the fingerprint of the space whose latents it reads
and writes, and how it was trained. A policy refuses a space with another fingerprint."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError
from xlhand.policy.model import LatentPolicy, PolicyConfig

FORMAT = "xlhand-policy"
FORMAT_VERSION = 2  # 2: actions carry the arm part and the anchor's fingertip weights; coordinate channels


def save_policy(path: str | Path, model: LatentPolicy, *, space_fingerprint: str, training: dict) -> Path:
    from safetensors.torch import save_file

    path = Path(path)
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": model.config.to_dict(),
            "space_fingerprint": space_fingerprint, "training": training}
    tensors = {k: v.detach().to(torch.float32).contiguous() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata={"xlhand": json.dumps(meta)})
    return path


def load_policy(path: str | Path, *, space_fingerprint: str | None = None) -> tuple[LatentPolicy, dict]:
    """The policy at ``path`` and its metadata; with ``space_fingerprint``, a policy of another space is a
    one-line error."""
    from xlhand.latent.space import check_format, read_safetensors

    path = Path(path)
    tensors, meta = read_safetensors(path)
    check_format(meta, path, FORMAT, FORMAT_VERSION, "policy")
    if not isinstance(meta.get("config"), dict):
        raise XlhandError("the policy metadata has no configuration", path)
    try:
        config = PolicyConfig.from_dict(meta["config"])
        model = LatentPolicy(config)
        model.load_state_dict(tensors, strict=True)
    except (TypeError, ValueError, RuntimeError) as exc:
        raise XlhandError(f"weights do not match the policy's configuration ({' '.join(str(exc).split())[:160]})",
                          path) from None
    if not all(torch.isfinite(v).all() for v in tensors.values()):
        raise XlhandError("the policy's weights hold NaN or infinite values", path)
    fp = meta.get("space_fingerprint")
    if space_fingerprint is not None and fp != space_fingerprint:
        raise XlhandError(f"the policy was trained on the space {str(fp)[:12]}, not this one "
                          f"({space_fingerprint[:12]}); retrain it (`xlhand policy train`)", path)
    model.eval()
    return model, meta
