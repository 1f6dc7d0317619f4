"""The LeRobotDataset v3.0 writer and reader (xlhand.sim.dataset): round trip, the v3 layout as lerobot and Hugging
Face ``datasets`` read it, statistics, resuming after a crash, and one-line errors on malformed folders."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from xlhand.errors import XlhandError
from xlhand.sim.dataset import DatasetWriter, Episode, read_dataset

FPS = 10
CAM = "observation.images.cam"
FEATURES = {
    CAM: {"dtype": "video", "shape": [32, 32, 3], "names": ["height", "width", "channels"]},
    "observation.state": {"dtype": "float32", "shape": [5], "names": [f"q{i}" for i in range(5)]},
    "action": {"dtype": "float32", "shape": [4], "names": [f"a{i}" for i in range(4)]},
    "observation.latent": {"dtype": "float32", "shape": [3], "names": None},
}
TASKS = ["pick up the red cube", "push the ball to the left", "pick up the red cube"]
LENGTHS = [12, 17, 10]


def make_episode(length: int, task: str, seed: int) -> Episode:
    """Smooth moving images (video codecs keep those close) and random vectors."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:32, 0:32]
    images = np.stack([np.stack([(xx * 6 + t * 4 + seed * 20) % 256, (yy * 7 + seed * 30) % 256,
                                 np.full_like(xx, 60 + 5 * t)], axis=-1) for t in range(length)]).astype(np.uint8)
    frames = {CAM: images,
              "observation.state": rng.normal(size=(length, 5)).astype(np.float32),
              "action": rng.uniform(-1, 1, size=(length, 4)).astype(np.float32),
              "observation.latent": rng.normal(size=(length, 3)).astype(np.float32)}
    return Episode(task=task, frames=frames, meta={"success": seed % 2 == 0, "seed": seed, "hand": "tiny",
                                                   "task_name": task.split()[0]})


def write(root: Path, episodes: list[Episode], **kwargs) -> None:
    with DatasetWriter(root, fps=FPS, features=FEATURES, robot_type="tiny_hand", **kwargs) as writer:
        for ep in episodes:
            writer.add_episode(ep)
        assert writer.num_episodes == len(episodes)


@pytest.fixture(scope="module")
def episodes() -> list[Episode]:
    return [make_episode(n, task, seed) for seed, (n, task) in enumerate(zip(LENGTHS, TASKS))]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, episodes) -> Path:
    root = tmp_path_factory.mktemp("ds") / "demo"
    write(root, episodes)
    return root


def check_round_trip(root: Path, episodes: list[Episode]) -> None:
    data = read_dataset(root)
    assert data.tasks == list(dict.fromkeys(e.task for e in episodes))  # by first use
    assert [r["length"] for r in data.episodes] == [len(e.frames["action"]) for e in episodes]
    start = 0
    for i, ep in enumerate(episodes):
        row, frames = data.episodes[i], data.frames(i)
        length = len(ep.frames["action"])
        assert row["episode_index"] == i and row["tasks"] == [ep.task]
        assert (row["dataset_from_index"], row["dataset_to_index"]) == (start, start + length)
        for key in ("observation.state", "action", "observation.latent"):
            assert frames[key].dtype == np.float32 and np.array_equal(frames[key], ep.frames[key]), key
        assert frames[CAM].dtype == np.uint8 and frames[CAM].shape == (length, 32, 32, 3)
        assert np.abs(frames[CAM].astype(int) - ep.frames[CAM].astype(int)).mean() < 8
        assert np.array_equal(frames["frame_index"], np.arange(length))
        assert np.allclose(frames["timestamp"], np.arange(length) / FPS)
        assert np.array_equal(frames["index"], np.arange(start, start + length))
        assert set(frames["episode_index"]) == {i}
        assert set(frames["task_index"]) == {data.tasks.index(ep.task)}
        assert {k: row[k] for k in ep.meta} == ep.meta
        start += length


def test_round_trip(dataset, episodes):
    check_round_trip(dataset, episodes)
    info = read_dataset(dataset).info
    assert info["codebase_version"] == "v3.0" and info["robot_type"] == "tiny_hand" and info["fps"] == FPS
    assert (info["total_episodes"], info["total_frames"], info["total_tasks"]) == (3, sum(LENGTHS), 2)
    assert info["splits"] == {"train": "0:3"} and info["chunks_size"] == 1000
    assert info["data_files_size_in_mb"] > 0 and info["video_files_size_in_mb"] > 0
    assert info["data_path"] == "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
    assert info["video_path"] == "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    assert list(info["features"]) == [*FEATURES, "timestamp", "frame_index", "episode_index", "index", "task_index"]
    assert info["features"]["timestamp"] == {"dtype": "float32", "shape": [1], "names": None}
    assert info["features"]["action"] == FEATURES["action"]
    video = info["features"][CAM]
    assert {k: video[k] for k in ("dtype", "shape", "names")} == FEATURES[CAM]
    assert video["info"]["video.codec"] in {"av1", "h264", "mpeg4"}
    assert {k: video["info"][k] for k in ("video.height", "video.width", "video.pix_fmt", "video.fps",
                                          "video.channels", "video.is_depth_map", "has_audio")} == {
        "video.height": 32, "video.width": 32, "video.pix_fmt": "yuv420p", "video.fps": FPS, "video.channels": 3,
        "video.is_depth_map": False, "has_audio": False}


def test_layout_reads_as_lerobot_and_hf_datasets_read_it(dataset, episodes, tmp_path):
    import datasets

    data_files = sorted(str(p) for p in (dataset / "data").glob("*/*.parquet"))
    assert len(data_files) == 3  # one file per episode
    hf = datasets.load_dataset("parquet", data_files=data_files, split="train", cache_dir=str(tmp_path / "hf"))
    assert hf.num_rows == sum(LENGTHS)
    assert hf.column_names == ["observation.state", "action", "observation.latent", "timestamp", "frame_index",
                               "episode_index", "index", "task_index"]
    assert pq.read_schema(data_files[0]).field("action").type.list_size == 4  # fixed-size list of float32

    rows = pq.read_table(dataset / "meta/episodes/chunk-000/file-000.parquet").to_pylist()
    index = np.asarray(hf["index"])
    episode_index = np.asarray(hf["episode_index"])
    for i, r in enumerate(rows):
        assert r["dataset_from_index"] == (rows[i - 1]["dataset_to_index"] if i else 0)
        assert np.array_equal(index[episode_index == i], np.arange(r["dataset_from_index"], r["dataset_to_index"]))
        assert (r["data/chunk_index"], r["data/file_index"]) == (0, i)
        assert (r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]) == (0, 0)
        assert r[f"videos/{CAM}/from_timestamp"] == 0.0
        assert r[f"videos/{CAM}/to_timestamp"] == pytest.approx(r["length"] / FPS)
        mp4 = dataset / f"videos/{CAM}/chunk-000/file-{i:03d}.mp4"
        with av.open(str(mp4)) as container:
            stream = container.streams.video[0]
            assert sum(1 for _ in container.decode(stream)) == r["length"]
            assert float(stream.duration * stream.time_base) == pytest.approx(r["length"] / FPS)
        state = episodes[i].frames["observation.state"].astype(np.float64)
        assert np.allclose(r["stats/observation.state/mean"], state.mean(0))
        assert r["stats/observation.state/count"] == [r["length"]]

    stats = json.loads((dataset / "meta/stats.json").read_text())
    for key in ("observation.state", "action", "observation.latent"):
        values = np.concatenate([e.frames[key] for e in episodes]).astype(np.float64)
        assert np.allclose(stats[key]["mean"], values.mean(0)) and np.allclose(stats[key]["std"], values.std(0))
        assert np.allclose(stats[key]["min"], values.min(0)) and np.allclose(stats[key]["max"], values.max(0))
        assert stats[key]["count"] == [sum(LENGTHS)]
        assert {"q01", "q10", "q50", "q90", "q99"} <= set(stats[key])
    pixels = np.concatenate([e.frames[CAM] for e in episodes]).reshape(-1, 3) / 255.0
    assert np.array(stats[CAM]["mean"]).shape == (3, 1, 1)
    assert np.allclose(np.ravel(stats[CAM]["mean"]), pixels.mean(0))
    assert np.allclose(np.ravel(stats[CAM]["std"]), pixels.std(0))
    assert np.allclose(stats["frame_index"]["max"], [max(LENGTHS) - 1])

    tasks = pd.read_parquet(dataset / "meta/tasks.parquet")  # lerobot load_tasks: the task string is the index
    assert tasks.index.name == "task" and list(tasks.columns) == ["task_index"]
    assert tasks.loc["push the ball to the left", "task_index"] == 1


def test_episodes_can_share_files(tmp_path, episodes):
    root = tmp_path / "shared"
    write(root, episodes, episodes_per_file=2)
    check_round_trip(root, episodes)
    rows = read_dataset(root).episodes
    assert [(r["data/file_index"], r[f"videos/{CAM}/file_index"]) for r in rows] == [(0, 0), (0, 0), (1, 1)]
    assert rows[1][f"videos/{CAM}/from_timestamp"] == pytest.approx(LENGTHS[0] / FPS)
    assert pq.ParquetFile(root / "data/chunk-000/file-000.parquet").metadata.num_rows == LENGTHS[0] + LENGTHS[1]


def test_resume_discards_a_half_written_episode(tmp_path, episodes):
    root = tmp_path / "resume"
    writer = DatasetWriter(root, fps=FPS, features=FEATURES, robot_type="tiny_hand")
    for ep in episodes[:2]:
        writer.add_episode(ep)
    del writer  # no close(): as if the process died between episodes
    # a third episode that died before its metadata row: a data file, a video and a pending copy, no row
    stray = root / "data/chunk-000/file-002.parquet"
    shutil.copy(root / "data/chunk-000/file-001.parquet", stray)
    stray_video = root / f"videos/{CAM}/chunk-000/file-002.mp4"
    shutil.copy(root / f"videos/{CAM}/chunk-000/file-001.mp4", stray_video)
    pending = root / "data/chunk-000/.file-002.parquet.ep000002.pending"
    shutil.copy(stray, pending)

    writer = DatasetWriter(root, fps=FPS, features=FEATURES, robot_type="tiny_hand")
    assert writer.num_episodes == 2
    assert not stray.exists() and not stray_video.exists() and not pending.exists()
    assert read_dataset(root).info["total_frames"] == LENGTHS[0] + LENGTHS[1]
    third = make_episode(7, "stack the blocks", seed=9)
    writer.add_episode(third)
    writer.close()
    writer.close()  # idempotent
    data = read_dataset(root)
    assert data.info["total_episodes"] == 3 and data.tasks == [TASKS[0], TASKS[1], "stack the blocks"]
    check_round_trip(root, [*episodes[:2], third])


def test_resume_finishes_a_committed_episode(tmp_path, episodes):
    root = tmp_path / "roll"
    write(root, episodes[:2])
    # died after the metadata commit but before renaming the pending files into place
    final = root / "data/chunk-000/file-001.parquet"
    final.rename(root / "data/chunk-000/.file-001.parquet.ep000001.pending")
    video = root / f"videos/{CAM}/chunk-000/file-001.mp4"
    video.rename(video.parent / ".file-001.mp4.ep000001.pending")
    assert DatasetWriter(root, fps=FPS, features=FEATURES, robot_type="tiny_hand").num_episodes == 2
    assert final.exists() and video.exists()
    check_round_trip(root, episodes[:2])


def test_reopening_with_other_features_or_fps_is_a_one_line_error(dataset):
    other = {**FEATURES, "action": {"dtype": "float32", "shape": [6], "names": None}}
    with pytest.raises(XlhandError) as err:
        DatasetWriter(dataset, fps=FPS, features=other, robot_type="tiny_hand")
    assert "\n" not in str(err.value) and str(dataset / "meta/info.json") in str(err.value)
    assert "action" in str(err.value)
    with pytest.raises(XlhandError, match="fps"):
        DatasetWriter(dataset, fps=30, features=FEATURES, robot_type="tiny_hand")


def test_malformed_datasets_name_the_file(dataset, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(dataset, broken)
    missing = broken / "data/chunk-000/file-001.parquet"
    missing.unlink()
    with pytest.raises(XlhandError) as err:
        read_dataset(broken)
    assert str(err.value).startswith(str(missing)) and "\n" not in str(err.value)

    (broken / "meta/info.json").unlink()
    with pytest.raises(XlhandError) as err:
        read_dataset(broken)
    assert str(err.value) == f"{broken / 'meta/info.json'}: missing"

    old = tmp_path / "old"
    shutil.copytree(dataset, old)
    info = json.loads((old / "meta/info.json").read_text())
    (old / "meta/info.json").write_text(json.dumps({**info, "codebase_version": "v2.1"}))
    with pytest.raises(XlhandError, match="codebase_version"):
        read_dataset(old)

    with pytest.raises(XlhandError, match="not empty"):  # never writes a dataset over some other folder
        DatasetWriter(tmp_path, fps=FPS, features=FEATURES, robot_type="tiny_hand")


def test_a_bad_episode_writes_nothing(tmp_path, episodes):
    root = tmp_path / "bad"
    writer = DatasetWriter(root, fps=FPS, features=FEATURES, robot_type="tiny_hand")
    short = make_episode(5, "reach", seed=1)
    short.frames["action"] = short.frames["action"][:4]
    with pytest.raises(ValueError, match="same"):
        writer.add_episode(short)
    with pytest.raises(ValueError, match="collides"):
        writer.add_episode(Episode("reach", episodes[0].frames, meta={"length": 3}))
    assert writer.num_episodes == 0
    assert not [p for p in root.rglob("*") if p.is_file() and p.name != "info.json"]
