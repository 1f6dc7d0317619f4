"""xlhand/_util: the atomic writer, the training allocator setting, Adam."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading

import pytest
import torch

from xlhand._util.atomic import atomic_path, current_umask, write_bytes_atomic, write_text_atomic
from xlhand.errors import XlhandError


def _umask_now() -> int:  # only for checks in this test file (not thread-safe, as the library must not be)
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


def test_atomic_write_writes_the_content_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    write_text_atomic(target, "héllo\n")
    assert target.read_text(encoding="utf-8") == "héllo\n"
    write_bytes_atomic(target, b"again")  # replaces an existing file
    assert target.read_bytes() == b"again"
    assert _leftovers(target.parent) == []


def test_atomic_path_keeps_the_suffix_and_removes_the_temp_file_on_error(tmp_path):
    target = tmp_path / "space.safetensors"
    target.write_bytes(b"old")
    seen = []
    with pytest.raises(RuntimeError, match="boom"), atomic_path(target) as tmp:
        seen.append(tmp)
        assert tmp.parent == tmp_path and tmp.suffix == ".safetensors"
        tmp.write_bytes(b"partial")
        raise RuntimeError("boom")
    assert not seen[0].exists()
    assert target.read_bytes() == b"old"  # untouched
    assert _leftovers(tmp_path) == []


def test_atomic_write_gives_the_mode_open_would(tmp_path):
    old = os.umask(0o027)
    try:
        assert current_umask() == 0o027
        write_text_atomic(tmp_path / "a.txt", "x")
        plain = tmp_path / "plain.txt"
        plain.write_text("x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "a.txt").stat().st_mode)
    assert mode == 0o640 == stat.S_IMODE(plain.stat().st_mode)


def test_the_umask_probe_fallback(tmp_path, monkeypatch):
    import builtins

    real_open = builtins.open

    def no_proc(file, *a, **k):
        if str(file) == "/proc/self/status":
            raise FileNotFoundError(file)
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    old = os.umask(0o037)
    try:
        assert current_umask(tmp_path) == 0o037 & 0o666
    finally:
        os.umask(old)
    assert _leftovers(tmp_path) == []


def test_a_write_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    before = _umask_now()
    calls = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda m: calls.append(m) or real(m))
    write_text_atomic(tmp_path / "a.txt", "x")
    monkeypatch.undo()
    assert calls == [] and _umask_now() == before


def test_atomic_writes_from_threads(tmp_path):
    def work(i):
        for j in range(20):
            write_text_atomic(tmp_path / f"t{i}.txt", f"{i} {j}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(p.read_text() for p in tmp_path.glob("t*.txt")) == [f"{i} 19" for i in range(4)]
    assert _leftovers(tmp_path) == []


def test_a_target_that_cannot_be_written_is_one_xlhand_error_naming_it(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a regular file, not a folder")
    target = blocker / "out.json"
    with pytest.raises(XlhandError) as info:
        write_text_atomic(target, "x")
    assert info.value.path == str(target) and str(target) in str(info.value)
    assert "cannot write" in str(info.value) and "Errno" in str(info.value)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores directory permissions")
def test_a_read_only_folder_is_one_xlhand_error(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(XlhandError, match="cannot write"):
            write_text_atomic(folder / "a.txt", "x")
    finally:
        folder.chmod(0o700)


def test_an_oserror_in_the_body_names_the_target(tmp_path):
    target = tmp_path / "a.bin"
    message = r"a\.bin: cannot write: \[Errno 28\] No space left on device"
    with pytest.raises(XlhandError, match=message), atomic_path(target):
        raise OSError(28, "No space left on device")
    assert _leftovers(tmp_path) == [] and not target.exists()


# --- keep_freed_memory ---------------------------------------------------------------------------------------

def _python(code: str, **env: str) -> str:
    e = dict(os.environ, **env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, check=True,
                          timeout=120).stdout.strip()


def _glibc() -> bool:
    try:
        return sys.platform.startswith("linux") and os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (AttributeError, ValueError, OSError):
        return False


@pytest.mark.skipif(not _glibc(), reason="glibc only")
def test_keep_freed_memory_on_glibc_is_true_and_idempotent():
    out = _python("from xlhand._util.memory import keep_freed_memory as k; print(k(), k())", XLHAND_KEEP_MEMORY="1")
    assert out == "True True"


def test_xlhand_keep_memory_0_leaves_the_allocator_alone():
    out = _python("from xlhand._util.memory import keep_freed_memory as k; print(k(), k())", XLHAND_KEEP_MEMORY="0")
    assert out == "False False"


def test_the_library_does_not_set_the_allocator_on_its_own():
    out = _python("import xlhand.training.loop, xlhand.training.pretrain, xlhand.training.onboard; "
                  "import xlhand._util.memory as m; print(m._done)")
    assert out == "None"


# --- Adam -----------------------------------------------------------------------------------------------------

def test_adam_equals_torch_adam_bitwise():
    from xlhand._util.optim import Adam

    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(7, 16), torch.nn.Tanh(), torch.nn.Linear(16, 3))

    ours, ref = model(), model()
    opt = Adam(ours.parameters(), lr=3e-3, betas=(0.9, 0.99), eps=1e-7)
    ref_opt = torch.optim.Adam(ref.parameters(), lr=3e-3, betas=(0.9, 0.99), eps=1e-7)
    gen = torch.Generator().manual_seed(1)
    for _ in range(50):
        x = torch.randn(32, 7, generator=gen)
        y = torch.randn(32, 3, generator=gen)
        opt.zero_grad()
        ((ours(x) - y) ** 2).mean().backward()
        opt.step()
        ref_opt.zero_grad(set_to_none=False)
        ((ref(x) - y) ** 2).mean().backward()
        ref_opt.step()
        for a, b in zip(ours.parameters(), ref.parameters()):
            assert torch.equal(a, b)
    state = [ref_opt.state[p] for p in ref.parameters()]
    assert torch.equal(opt.exp_avg, torch.cat([s["exp_avg"].reshape(-1) for s in state]))
    assert torch.equal(opt.exp_avg_sq, torch.cat([s["exp_avg_sq"].reshape(-1) for s in state]))
    assert opt.t == 50
