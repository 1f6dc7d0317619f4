"""LeRobotDataset v3.0 on disk, written and read with pyarrow and PyAV (no ``lerobot`` dependency).

The layout and every field follow lerobot's own v3 code (``src/lerobot/datasets/``: ``utils.py`` for the path
templates and defaults, ``feature_utils.py`` / ``dataset_metadata.py`` for ``info.json``, ``tasks.parquet`` and the
episodes metadata, ``dataset_writer.py`` for the data and video columns, ``compute_stats.py`` for the statistics,
``video_utils.py`` for encoding and the video ``info`` block)::

    meta/info.json                    codebase_version "v3.0", totals, fps, splits, path templates, features
    meta/stats.json                   per feature: min, max, mean, std, count, q01 q10 q50 q90 q99
    meta/tasks.parquet                pandas frame: index "task" (the instruction), column task_index
    meta/episodes/chunk-CCC/file-FFF.parquet
                                      one row per episode: episode_index, tasks, length, data/chunk_index,
                                      data/file_index, dataset_from_index, dataset_to_index,
                                      videos/{key}/{chunk_index,file_index,from_timestamp,to_timestamp},
                                      stats/{feature}/{stat}, meta/episodes/{chunk_index,file_index}, then the
                                      episode's own ``Episode.meta`` scalars (success, seed, ...)
    data/chunk-CCC/file-FFF.parquet   one row per frame: the vector features (fixed-size lists), timestamp,
                                      frame_index, episode_index, index, task_index
    videos/{key}/chunk-CCC/file-FFF.mp4

**Files.** lerobot starts a new data/video file when the current one passes a size limit; here a file takes
``episodes_per_file`` episodes (default 1: one parquet and one mp4 per episode, file_index = the episode's place in
its chunk of ``chunks_size`` = 1000 files). Both are valid v3: readers locate episodes through the episodes
metadata (row ranges, video timestamps), never through file names. Episodes metadata files take 100 rows each.

**Crash safety.** An episode's data and video files are first written complete beside their targets as hidden
``.file-FFF.EXT.epNNNNNN.pending`` files (fsynced); the episode is committed by atomically replacing its episodes
metadata file with one that has its row; then the pending files are renamed onto their targets and info.json,
stats.json and tasks.parquet rewritten (each atomically). Reopening a folder resumes it: pending files of
committed episodes are renamed into place, all others (and data/video files no committed row names) deleted, and
info/stats/tasks rebuilt from the episodes metadata. So after ``add_episode`` returns a crash loses nothing, and a
crash inside it loses only that episode.

**Deviations from lerobot's numbers, not its format.** Statistics are exact: quantiles by linear interpolation
(lerobot: a 5000-bin histogram), image mean/std in float64 from a pixel histogram (lerobot squares uint8 pixels).
Images are sampled for statistics as lerobot does (every frame up to 100 frames, then ``T**0.75``; frames of 300
pixels or more are strided down to about 150).

**Video.** ``libsvtav1`` (what lerobot uses) when PyAV has it, else ``libx264``, else ``mpeg4``; ``yuv420p``,
``g=2``, ``crf=30`` as in lerobot's ``encode_video_frames``; ``info.json`` records the codec read back from the
file (``av1``, ``h264`` or ``mpeg4``). SVT-AV1 prints a banner per encoder on stderr unless ``SVT_LOG`` is set;
this module sets ``SVT_LOG=1`` (errors only) when it is unset.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from xlhand._util.atomic import fsync_dir, fsync_file, write_text_atomic
from xlhand.errors import XlhandError

CODEBASE_VERSION = "v3.0"
DEFAULT_CHUNK_SIZE = 1000  # max files per chunk folder (lerobot utils.DEFAULT_CHUNK_SIZE)
DEFAULT_DATA_FILE_SIZE_IN_MB = 100  # recorded in info.json as lerobot does; files here are split by episode count
DEFAULT_VIDEO_FILE_SIZE_IN_MB = 500
EPISODES_PER_META_FILE = 100

INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
TASKS_PATH = "meta/tasks.parquet"
EPISODES_DIR = "meta/episodes"
CHUNK_FILE_PATTERN = "chunk-{chunk_index:03d}/file-{file_index:03d}"
DEFAULT_EPISODES_PATH = EPISODES_DIR + "/" + CHUNK_FILE_PATTERN + ".parquet"
DEFAULT_DATA_PATH = "data/" + CHUNK_FILE_PATTERN + ".parquet"
DEFAULT_VIDEO_PATH = "videos/{video_key}/" + CHUNK_FILE_PATTERN + ".mp4"

DEFAULT_FEATURES = {
    "timestamp": {"dtype": "float32", "shape": [1], "names": None},
    "frame_index": {"dtype": "int64", "shape": [1], "names": None},
    "episode_index": {"dtype": "int64", "shape": [1], "names": None},
    "index": {"dtype": "int64", "shape": [1], "names": None},
    "task_index": {"dtype": "int64", "shape": [1], "names": None},
}
QUANTILES = {"q01": 0.01, "q10": 0.10, "q50": 0.50, "q90": 0.90, "q99": 0.99}  # compute_stats.DEFAULT_QUANTILES

# encoder -> the codec name PyAV reads back from the file (what info.json records), in order of preference
ENCODERS = {"libsvtav1": "av1", "libx264": "h264", "mpeg4": "mpeg4"}
VIDEO_PIX_FMT = "yuv420p"
VIDEO_GOP = 2  # lerobot's g: a keyframe every 2 frames keeps random access cheap
VIDEO_CRF = 30

_RESERVED_COLUMNS = {"episode_index", "tasks", "length", "dataset_from_index", "dataset_to_index"}
_RESERVED_PREFIXES = ("data/", "videos/", "stats/", "meta/")
_CHUNK_DIR = re.compile(r"^chunk-(\d+)$")
_FINAL_FILE = re.compile(r"^file-(\d+)\.(parquet|mp4)$")
_PENDING_FILE = re.compile(r"^\.(file-\d+\.(?:parquet|mp4))\.ep(\d+)\.pending$")


@dataclass
class Episode:
    """One demonstration: its instruction, its per-frame features and per-episode scalars.

    ``frames``: feature name -> ``(T, ...)`` array, the same ``T`` for all; image features uint8 ``(T, H, W, 3)``,
    vector features ``(T, n)`` (cast to the feature's dtype, float32 by default). ``meta``: extra scalars (bool,
    int, float, str) stored as columns of the episodes metadata, e.g. ``success``, ``seed``, ``hand``.
    """

    task: str
    frames: dict[str, np.ndarray]
    meta: dict = field(default_factory=dict)


@dataclass
class LeRobotData:
    """A validated dataset: its metadata in memory, frames read on demand with :meth:`frames`."""

    root: Path
    info: dict
    stats: dict[str, dict[str, np.ndarray]]
    tasks: list[str]  # by task_index
    episodes: list[dict]  # the episodes metadata rows, by episode_index
    _cache: dict = field(default_factory=dict, repr=False)

    @property
    def video_keys(self) -> list[str]:
        return [k for k, ft in self.info["features"].items() if ft["dtype"] == "video"]

    def frames(self, episode_index: int) -> dict[str, np.ndarray]:
        """Every feature of one episode: user vectors ``(T, n)``, the default columns ``(T,)``, videos ``(T, H, W, 3)``
        uint8 (decoded)."""
        if not 0 <= episode_index < len(self.episodes):
            raise IndexError(f"episode {episode_index} out of range: the dataset has {len(self.episodes)}")
        ep = self.episodes[episode_index]
        features = self.info["features"]
        length = ep["length"]
        path = self.root / self.info["data_path"].format(chunk_index=ep["data/chunk_index"],
                                                         file_index=ep["data/file_index"])
        if self._cache.get("path") != path:  # several episodes may share a file: keep the last one read
            self._cache.update(path=path, table=_read_table(path))
        table = self._cache["table"]
        if "episode_index" not in table.column_names:
            raise XlhandError("no episode_index column", path)
        rows = table.filter(pc.equal(table["episode_index"], episode_index))
        if rows.num_rows != length:
            raise XlhandError(f"holds {rows.num_rows} rows of episode {episode_index}, its metadata says {length}",
                              path)
        out: dict[str, np.ndarray] = {}
        for key, ft in features.items():
            if ft["dtype"] == "video":
                continue
            if key not in rows.column_names:
                raise XlhandError(f"no column {key!r}", path)
            values = _column_to_numpy(rows[key], length, path, key).astype(ft["dtype"], copy=False)
            out[key] = values.reshape(length, *ft["shape"]) if key not in DEFAULT_FEATURES else values.reshape(-1)
        if not np.array_equal(out["frame_index"], np.arange(length)):
            raise XlhandError(f"frame_index of episode {episode_index} is not 0..{length - 1} in order", path)
        for key in self.video_keys:
            vpath = self.root / self.info["video_path"].format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                                               file_index=ep[f"videos/{key}/file_index"])
            out[key] = _decode_video(vpath, ep[f"videos/{key}/from_timestamp"], ep[f"videos/{key}/to_timestamp"],
                                     length, self.info["fps"], episode_index)
        return out


class DatasetWriter:
    """Append episodes to a LeRobotDataset v3.0 folder; reopening an existing folder resumes it (module docstring).

    ``features``: name -> ``{"dtype": "float32", "shape": [n], "names": [...]}``; camera features as
    ``{"dtype": "video", "shape": [H, W, 3], "names": ["height", "width", "channels"]}``. ``image_keys``, when given,
    must name exactly the video features. A folder holding a dataset with other features, fps or robot_type is an
    :class:`~xlhand.errors.XlhandError`.
    """

    def __init__(self, root: Path, *, fps: int, features: dict[str, dict], robot_type: str,
                 image_keys: tuple[str, ...] = (), episodes_per_file: int = 1):
        if not isinstance(fps, int) or isinstance(fps, bool) or fps <= 0:
            raise ValueError(f"fps must be a positive integer, not {fps!r}")
        if not isinstance(episodes_per_file, int) or episodes_per_file < 1:
            raise ValueError(f"episodes_per_file must be a positive integer, not {episodes_per_file!r}")
        self.root = Path(root)
        self.fps = fps
        self.robot_type = robot_type
        self.episodes_per_file = episodes_per_file
        user = _normalize_features(features, image_keys)
        self._features = {**user, **DEFAULT_FEATURES}
        self.video_keys = [k for k, ft in user.items() if ft["dtype"] == "video"]
        self._rows: list[dict] = []  # committed episodes metadata rows, by episode_index
        self._tasks: list[str] = []
        self._stats: dict | None = None
        self._closed = False
        info_file = self.root / INFO_PATH
        if info_file.exists():
            self._resume(info_file)
        else:
            if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
                raise XlhandError("not empty and holds no meta/info.json: not a dataset to resume; "
                                  "use an empty or new folder", self.root)
            self._encoder = _pick_encoder() if self.video_keys else None
            self._info = _empty_info(fps, self._features, robot_type)
            self._write_info()

    @property
    def num_episodes(self) -> int:
        return len(self._rows)

    @property
    def episodes(self) -> list[dict]:
        """The committed episodes metadata rows (copies), by episode_index."""
        return [dict(r) for r in self._rows]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Write the final info.json and stats.json; idempotent. Episodes already added are safe without it."""
        if self._closed:
            return
        self._write_info()
        if self._stats is not None:
            write_text_atomic(self.root / STATS_PATH, _stats_json(self._stats))
        self._closed = True

    # -- adding an episode ------------------------------------------------------------------------------------

    def add_episode(self, ep: Episode) -> None:
        """Write one episode (data, videos, metadata row) and the updated info/stats/tasks; see the module docstring."""
        if self._closed:
            raise XlhandError("the dataset writer is closed", self.root)
        arrays, length = self._check_episode(ep)
        meta = _check_meta(ep.meta)
        n = len(self._rows)
        start = self._rows[-1]["dataset_to_index"] if self._rows else 0
        new_task = ep.task not in self._tasks
        task_index = self._tasks.index(ep.task) if not new_task else len(self._tasks)

        # which data/video file: the last one while it has room, else the next one (lerobot's index stepping)
        chunk, file, before = 0, 0, 0
        if self._rows:
            last = self._rows[-1]
            chunk, file = last["data/chunk_index"], last["data/file_index"]
            in_file = [r for r in self._rows if (r["data/chunk_index"], r["data/file_index"]) == (chunk, file)]
            if len(in_file) < self.episodes_per_file:
                before = sum(r["length"] for r in in_file)
            else:
                chunk, file = _next_file(chunk, file, self._info["chunks_size"])
        frame_index = np.arange(length, dtype=np.int64)
        defaults = {"timestamp": frame_index / self.fps, "frame_index": frame_index,
                    "episode_index": np.full(length, n, dtype=np.int64),
                    "index": np.arange(start, start + length, dtype=np.int64),
                    "task_index": np.full(length, task_index, dtype=np.int64)}

        pendings: list[tuple[Path, Path]] = []  # (pending, final)
        try:
            final = self.root / DEFAULT_DATA_PATH.format(chunk_index=chunk, file_index=file)
            pending = _pending_path(final, n)
            pendings.append((pending, final))
            table = _data_table(self._features, arrays, defaults)
            if before:  # the file already holds committed episodes: the pending copy is old rows + new rows
                old = _read_table(final)
                table = pa.concat_tables([old, table.cast(old.schema)])
            _write_parquet(table, pending)
            row: dict[str, Any] = {"episode_index": n, "tasks": [ep.task], "length": length,
                                   "data/chunk_index": chunk, "data/file_index": file,
                                   "dataset_from_index": start, "dataset_to_index": start + length}
            for key in self.video_keys:
                final = self.root / DEFAULT_VIDEO_PATH.format(video_key=key, chunk_index=chunk, file_index=file)
                pending = _pending_path(final, n)
                pendings.append((pending, final))
                if before:
                    part = final.parent / f".{final.name}.ep{n:06d}.partial"
                    try:
                        _encode_video(arrays[key], part, self.fps, self._encoder)
                        _concat_videos([final, part], pending)
                    finally:
                        with contextlib.suppress(OSError):
                            part.unlink()
                else:
                    _encode_video(arrays[key], pending, self.fps, self._encoder)
                fsync_file(pending)
                row.update({f"videos/{key}/chunk_index": chunk, f"videos/{key}/file_index": file,
                            f"videos/{key}/from_timestamp": before / self.fps,
                            f"videos/{key}/to_timestamp": (before + length) / self.fps})
            ep_stats = _episode_stats({**arrays, **defaults}, self._features)
            row.update({f"stats/{k}/{s}": v.tolist() for k, st in ep_stats.items() for s, v in st.items()})
            meta_chunk, meta_file, meta_rows = self._meta_file_for_next()
            row.update({"meta/episodes/chunk_index": meta_chunk, "meta/episodes/file_index": meta_file, **meta})
            if new_task:  # before the commit, so a committed episode's task is always in tasks.parquet
                self._tasks.append(ep.task)
                _write_tasks(self._tasks, self.root / TASKS_PATH)
            # the commit: the episodes metadata file with this episode's row replaces the old one atomically
            _write_episode_rows(meta_rows + [row], self.root / DEFAULT_EPISODES_PATH.format(
                chunk_index=meta_chunk, file_index=meta_file))
        except BaseException:
            for pending, _ in pendings:
                with contextlib.suppress(OSError):
                    pending.unlink()
            if new_task and self._tasks and self._tasks[-1] == ep.task:
                self._tasks.pop()
                with contextlib.suppress(Exception):
                    _write_tasks(self._tasks, self.root / TASKS_PATH)
            raise
        for pending, final in pendings:  # roll forward; a crash here is finished by the next resume
            _replace(pending, final)
        self._rows.append(row)
        self._stats = ep_stats if self._stats is None else _aggregate_stats([self._stats, ep_stats])
        if n == 0:
            self._set_video_info()
        self._update_totals()
        self._write_info()
        write_text_atomic(self.root / STATS_PATH, _stats_json(self._stats))

    def _check_episode(self, ep: Episode) -> tuple[dict[str, np.ndarray], int]:
        if not isinstance(ep.task, str) or not ep.task.strip():
            raise ValueError("Episode.task must be a non-empty instruction string")
        user = {k: ft for k, ft in self._features.items() if k not in DEFAULT_FEATURES}
        missing, extra = sorted(set(user) - set(ep.frames)), sorted(set(ep.frames) - set(user))
        if missing or extra:
            raise ValueError(f"Episode.frames does not match the features: missing {missing}, unknown {extra}")
        arrays: dict[str, np.ndarray] = {}
        lengths = set()
        for key, ft in user.items():
            value = np.asarray(ep.frames[key])
            if ft["dtype"] == "video":
                if value.dtype != np.uint8 or value.shape[1:] != tuple(ft["shape"]):
                    raise ValueError(f"{key}: expected uint8 (T, {', '.join(map(str, ft['shape']))}), "
                                     f"got {value.dtype} {value.shape}")
            else:
                if value.ndim != 2 or value.shape[1:] != tuple(ft["shape"]):
                    raise ValueError(f"{key}: expected (T, {ft['shape'][0]}), got {value.shape}")
                if not np.can_cast(value.dtype, ft["dtype"], "same_kind"):
                    raise ValueError(f"{key}: {value.dtype} values do not fit the feature's {ft['dtype']}")
                value = value.astype(ft["dtype"], copy=False)
                if value.dtype.kind == "f" and not np.isfinite(value).all():
                    raise ValueError(f"{key}: holds NaN or infinite values")
            arrays[key] = np.ascontiguousarray(value)
            lengths.add(value.shape[0])
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(f"Episode.frames must all have the same, non-zero number of frames; got {sorted(lengths)}")
        return arrays, lengths.pop()

    def _meta_file_for_next(self) -> tuple[int, int, list[dict]]:
        """The episodes metadata file the next row goes to, and the rows already in it."""
        if not self._rows:
            return 0, 0, []
        key = (self._rows[-1]["meta/episodes/chunk_index"], self._rows[-1]["meta/episodes/file_index"])
        rows = [r for r in self._rows if (r["meta/episodes/chunk_index"], r["meta/episodes/file_index"]) == key]
        if len(rows) < EPISODES_PER_META_FILE:
            return key[0], key[1], rows
        return (*_next_file(*key, self._info["chunks_size"]), [])

    # -- metadata -----------------------------------------------------------------------------------------------

    def _set_video_info(self) -> None:
        """The ``info`` block of each video feature, read from the first episode's file (lerobot update_video_info)."""
        for key in self.video_keys:
            path = self.root / DEFAULT_VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0)
            self._info["features"][key]["info"] = _video_info(path)

    def _update_totals(self) -> None:
        self._info["total_episodes"] = len(self._rows)
        self._info["total_frames"] = self._rows[-1]["dataset_to_index"] if self._rows else 0
        self._info["total_tasks"] = len(self._tasks)
        self._info["splits"] = {"train": f"0:{len(self._rows)}"} if self._rows else {}

    def _write_info(self) -> None:
        write_text_atomic(self.root / INFO_PATH, json.dumps(self._info, indent=4, ensure_ascii=False) + "\n")

    # -- resuming -----------------------------------------------------------------------------------------------

    def _resume(self, info_file: Path) -> None:
        info = _load_info(info_file)
        stored = {k: {"dtype": ft["dtype"], "shape": list(ft["shape"]), "names": ft.get("names")}
                  for k, ft in info["features"].items()}
        if stored != self._features:
            missing = sorted(set(self._features) - set(stored))
            extra = sorted(set(stored) - set(self._features))
            changed = sorted(k for k in set(stored) & set(self._features) if stored[k] != self._features[k])
            raise XlhandError(f"holds a dataset with other features (absent there: {missing}, only there: {extra}, "
                              f"different: {changed}); reopen with its features or use a new folder", info_file)
        for name, want in (("fps", self.fps), ("robot_type", self.robot_type)):
            if info.get(name) != want:
                raise XlhandError(f"holds a dataset with {name} {info.get(name)!r}, not {want!r}", info_file)
        for name, template in (("data_path", DEFAULT_DATA_PATH), ("video_path", DEFAULT_VIDEO_PATH)):
            if info.get(name) not in (template, None if name == "video_path" and not self.video_keys else template):
                raise XlhandError(f"{name} is {info.get(name)!r}; this writer appends only to {template!r}", info_file)
        info["features"] = {k: info["features"][k] for k in self._features}  # the requested order
        self._info = info
        self._rows = _load_episode_rows(self.root, allow_empty=True)
        _check_rows(self._rows, self.root / EPISODES_DIR, self.video_keys)
        self._recover_files()
        self._tasks = self._recover_tasks()
        if self._rows and any("info" not in self._info["features"][k] for k in self.video_keys):
            self._set_video_info()  # died after the first episode's commit, before its info.json
        self._encoder = self._resume_encoder(info_file)
        stats = [_stats_from_row(r, self._features) for r in self._rows]
        self._stats = _aggregate_stats(stats) if stats else None
        self._update_totals()
        self._write_info()
        if self._stats is not None:
            write_text_atomic(self.root / STATS_PATH, _stats_json(self._stats))

    def _recover_files(self) -> None:
        """Finish or drop pending files, delete temp files and data/video files no committed row names."""
        committed = len(self._rows)
        dirs = [(self.root / "data", "parquet", "data")]
        dirs += [(self.root / "videos" / k, "mp4", f"videos/{k}") for k in self.video_keys]
        for base, ext, prefix in dirs:
            wanted = {(r[f"{prefix}/chunk_index"], r[f"{prefix}/file_index"]) for r in self._rows}
            if not base.is_dir():
                continue
            for chunk_dir in sorted(p for p in base.iterdir() if _CHUNK_DIR.match(p.name) and p.is_dir()):
                pend = sorted((int(m.group(2)), p, m.group(1)) for p in chunk_dir.iterdir()
                              if (m := _PENDING_FILE.match(p.name)))
                for ep_index, path, target in pend:  # in episode order, so the newest committed copy wins
                    if ep_index < committed:
                        _replace(path, chunk_dir / target)
                    else:
                        path.unlink()
                for path in chunk_dir.iterdir():
                    m = _FINAL_FILE.match(path.name)
                    if path.name.startswith(".") and path.name.endswith(".partial"):
                        path.unlink()
                    elif m and m.group(2) == ext and (int(_CHUNK_DIR.match(chunk_dir.name).group(1)),
                                                       int(m.group(1))) not in wanted:
                        path.unlink()  # a half-written episode's file: no committed row names it
        for tmp in (self.root / "meta").rglob(".*"):  # temp files of interrupted atomic writes
            if tmp.is_file() and (tmp.name.endswith(".partial") or ".tmp." in tmp.name):
                tmp.unlink()
        expected: dict[Path, int] = {}
        for r in self._rows:
            path = self.root / DEFAULT_DATA_PATH.format(chunk_index=r["data/chunk_index"],
                                                        file_index=r["data/file_index"])
            expected[path] = expected.get(path, 0) + r["length"]
            for key in self.video_keys:
                vpath = self.root / DEFAULT_VIDEO_PATH.format(video_key=key, chunk_index=r[f"videos/{key}/chunk_index"],
                                                              file_index=r[f"videos/{key}/file_index"])
                if not vpath.is_file():
                    raise XlhandError(f"missing: episode {r['episode_index']} is committed with its video here", vpath)
        for path, rows in expected.items():
            have = _parquet_rows(path)
            if have != rows:
                raise XlhandError(f"holds {have} rows, the committed episodes put {rows} in it", path)

    def _recover_tasks(self) -> list[str]:
        """tasks.parquet, less any trailing task only an uncommitted episode used."""
        used = {t for r in self._rows for t in r["tasks"]}
        path = self.root / TASKS_PATH
        tasks = _load_tasks(path) if path.exists() else []
        for t in (t for r in self._rows for t in r["tasks"]):
            if t not in tasks:
                tasks.append(t)
        while tasks and tasks[-1] not in used:
            tasks.pop()
        if tasks:
            _write_tasks(tasks, path)
        return tasks

    def _resume_encoder(self, info_file: Path) -> str | None:
        if not self.video_keys:
            return None
        codecs = {self._info["features"][k].get("info", {}).get("video.codec") for k in self.video_keys} - {None}
        if not codecs:
            return _pick_encoder()
        codec = codecs.pop()
        encoder = next((e for e, c in ENCODERS.items() if c == codec), None)
        if codecs or encoder is None or encoder != _pick_encoder(prefer=encoder):
            raise XlhandError(f"its videos use codec {codec!r}, which this PyAV cannot encode", info_file)
        return encoder


# -- reading -------------------------------------------------------------------------------------------------------


def read_dataset(root: Path) -> LeRobotData:
    """Load and validate a LeRobotDataset v3.0 folder; anything missing or malformed is a one-line XlhandError."""
    root = Path(root)
    info = _load_info(root / INFO_PATH)
    features = info["features"]
    video_keys = [k for k, ft in features.items() if ft["dtype"] == "video"]
    n = info["total_episodes"]
    rows = _load_episode_rows(root) if n or (root / EPISODES_DIR).exists() else []
    _check_rows(rows, root / EPISODES_DIR, video_keys)
    if len(rows) != n:
        raise XlhandError(f"total_episodes is {n}, the episodes metadata has {len(rows)}", root / INFO_PATH)
    total = rows[-1]["dataset_to_index"] if rows else 0
    if total != info["total_frames"]:
        raise XlhandError(f"total_frames is {info['total_frames']}, the episodes hold {total}", root / INFO_PATH)
    tasks = _load_tasks(root / TASKS_PATH) if n or (root / TASKS_PATH).exists() else []
    if len(tasks) != info["total_tasks"]:
        raise XlhandError(f"total_tasks is {info['total_tasks']}, tasks.parquet has {len(tasks)}", root / INFO_PATH)
    unknown = sorted({t for r in rows for t in r["tasks"]} - set(tasks))
    if unknown:
        raise XlhandError(f"episodes use tasks that tasks.parquet lacks: {unknown}", root / TASKS_PATH)
    stats = _load_stats(root / STATS_PATH) if n or (root / STATS_PATH).exists() else {}

    expected: dict[Path, int] = {}
    for r in rows:
        path = root / info["data_path"].format(chunk_index=r["data/chunk_index"], file_index=r["data/file_index"])
        expected[path] = expected.get(path, 0) + r["length"]
        for key in video_keys:
            vpath = root / info["video_path"].format(video_key=key, chunk_index=r[f"videos/{key}/chunk_index"],
                                                     file_index=r[f"videos/{key}/file_index"])
            if not vpath.is_file():
                raise XlhandError(f"missing (episode {r['episode_index']}'s video {key})", vpath)
    columns = [k for k, ft in features.items() if ft["dtype"] != "video"]
    for path, count in expected.items():
        if not path.is_file():
            raise XlhandError("missing (named by the episodes metadata)", path)
        try:
            meta = pq.ParquetFile(path)
            names = meta.schema_arrow.names
            have = meta.metadata.num_rows
        except (OSError, pa.ArrowException) as exc:
            raise XlhandError(f"cannot read as parquet: {_one_line(exc)}", path) from exc
        if missing := [c for c in columns if c not in names]:
            raise XlhandError(f"no column(s) {missing}", path)
        if have != count:
            raise XlhandError(f"holds {have} rows, the episodes metadata puts {count} in it", path)
    return LeRobotData(root=root, info=info, stats=stats, tasks=tasks, episodes=rows)


def _load_info(path: Path) -> dict:
    info = _load_json(path)
    if not isinstance(info, dict):
        raise XlhandError("not a JSON object", path)
    if info.get("codebase_version") != CODEBASE_VERSION:
        raise XlhandError(f"codebase_version is {info.get('codebase_version')!r}, expected {CODEBASE_VERSION!r}",
                          path)
    required = {"fps": int, "features": dict, "data_path": str, "total_episodes": int, "total_frames": int,
                "total_tasks": int, "chunks_size": int}
    for key, kind in required.items():
        if not isinstance(info.get(key), kind) or isinstance(info.get(key), bool):
            raise XlhandError(f"{key} is missing or not a {kind.__name__}", path)
    for name, ft in info["features"].items():
        if not isinstance(ft, dict) or not isinstance(ft.get("dtype"), str) or not isinstance(ft.get("shape"), list):
            raise XlhandError(f"feature {name!r} needs a dtype string and a shape list", path)
        if not all(isinstance(s, int) and s > 0 for s in ft["shape"]):
            raise XlhandError(f"feature {name!r} has a bad shape {ft['shape']}", path)
    if any(ft["dtype"] == "video" for ft in info["features"].values()) and not isinstance(info.get("video_path"), str):
        raise XlhandError("video_path is missing but there are video features", path)
    for name in DEFAULT_FEATURES:
        if name not in info["features"]:
            raise XlhandError(f"the default feature {name!r} is missing", path)
    return info


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise XlhandError("missing", path) from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise XlhandError(f"cannot read as JSON: {_one_line(exc)}", path) from exc


def _load_stats(path: Path) -> dict[str, dict[str, np.ndarray]]:
    stats = _load_json(path)
    if not isinstance(stats, dict) or not all(isinstance(v, dict) for v in stats.values()):
        raise XlhandError("not a {feature: {stat: values}} object", path)
    try:
        return {k: {s: np.asarray(v) for s, v in st.items()} for k, st in stats.items()}
    except ValueError as exc:
        raise XlhandError(f"ragged statistics: {_one_line(exc)}", path) from exc


def _load_tasks(path: Path) -> list[str]:
    table = _read_table(path)
    if "task" not in table.column_names or "task_index" not in table.column_names:
        raise XlhandError(f"needs columns task and task_index, has {table.column_names}", path)
    pairs = sorted(zip(table["task_index"].to_pylist(), table["task"].to_pylist()))
    if [i for i, _ in pairs] != list(range(len(pairs))) or not all(isinstance(t, str) for _, t in pairs):
        raise XlhandError("task_index must number the tasks 0..n-1 once each", path)
    return [t for _, t in pairs]


def _load_episode_rows(root: Path, allow_empty: bool = False) -> list[dict]:
    """All rows of meta/episodes/chunk-*/file-*.parquet, by episode_index (none: an error unless ``allow_empty``)."""
    base = root / EPISODES_DIR
    paths = sorted(p for c in (base.iterdir() if base.is_dir() else []) if _CHUNK_DIR.match(c.name) and c.is_dir()
                   for p in c.iterdir() if (m := _FINAL_FILE.match(p.name)) and m.group(2) == "parquet")
    if not paths and not allow_empty:
        raise XlhandError("missing: no chunk-*/file-*.parquet episodes metadata", base)
    rows = []
    for path in paths:
        file_rows = _read_table(path).to_pylist()
        for r in file_rows:
            r["_path"] = path
        rows += file_rows
    required = ("episode_index", "tasks", "length", "data/chunk_index", "data/file_index",
                "dataset_from_index", "dataset_to_index")
    for r in rows:
        if missing := [c for c in required if c not in r or r[c] is None]:
            raise XlhandError(f"no column(s) {missing}", r["_path"])
    rows.sort(key=lambda r: r["episode_index"])
    return rows


def _check_rows(rows: list[dict], where: Path, video_keys: list[str]) -> None:
    """Episode indices 0..n-1, frame ranges contiguous from 0, video columns present; drops the ``_path`` helper."""
    start = 0
    for i, r in enumerate(rows):
        path = r.pop("_path", where)
        if r["episode_index"] != i:
            raise XlhandError(f"episode indices are not 0..{len(rows) - 1} (found {r['episode_index']} at {i})", path)
        if r["dataset_from_index"] != start or r["dataset_to_index"] - start != r["length"] or r["length"] <= 0:
            raise XlhandError(f"episode {i}: dataset_from_index/to_index {r['dataset_from_index']}.."
                              f"{r['dataset_to_index']} do not continue from {start} with length {r['length']}", path)
        if not isinstance(r["tasks"], list) or not r["tasks"]:
            raise XlhandError(f"episode {i}: tasks must be a non-empty list", path)
        for key in video_keys:
            cols = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp", "to_timestamp")]
            if missing := [c for c in cols if r.get(c) is None]:
                raise XlhandError(f"episode {i}: no column(s) {missing}", path)
        start = r["dataset_to_index"]


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except FileNotFoundError as exc:
        raise XlhandError("missing", path) from exc
    except (OSError, pa.ArrowException) as exc:
        raise XlhandError(f"cannot read as parquet: {_one_line(exc)}", path) from exc


def _parquet_rows(path: Path) -> int:
    if not path.is_file():
        raise XlhandError("missing (named by a committed episode)", path)
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException) as exc:
        raise XlhandError(f"cannot read as parquet: {_one_line(exc)}", path) from exc


def _column_to_numpy(col: pa.ChunkedArray, length: int, path: Path, key: str) -> np.ndarray:
    arr = col.combine_chunks()
    if pa.types.is_fixed_size_list(arr.type) or pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type):
        values = arr.flatten().to_numpy(zero_copy_only=False)
        if length and values.size % length:
            raise XlhandError(f"column {key!r} has rows of different lengths", path)
        return values.reshape(length, -1)
    return arr.to_numpy(zero_copy_only=False)


# -- writing helpers -----------------------------------------------------------------------------------------------


def _normalize_features(features: dict[str, dict], image_keys: tuple[str, ...]) -> dict[str, dict]:
    """``{dtype, shape (list), names}`` per user feature, checked the way lerobot's writer needs them."""
    out = {}
    for name, ft in features.items():
        if not isinstance(name, str) or not name or "/" in name:  # lerobot: feature names never contain '/'
            raise ValueError(f"feature name {name!r}: must be a non-empty string without '/'")
        if name in DEFAULT_FEATURES:
            raise ValueError(f"feature {name!r} is one of the default features the writer fills in itself")
        dtype, shape, names = ft.get("dtype"), list(ft.get("shape") or ()), ft.get("names")
        if not all(isinstance(s, int) and s > 0 for s in shape):
            raise ValueError(f"feature {name!r}: bad shape {ft.get('shape')!r}")
        if dtype == "video":
            if len(shape) != 3 or shape[2] != 3:
                raise ValueError(f"video feature {name!r}: shape must be [height, width, 3], not {shape}")
        elif dtype == "image":
            raise ValueError(f"feature {name!r}: dtype 'image' (PNG in parquet) is not written here; use 'video'")
        else:
            try:
                kind = np.dtype(dtype).kind
            except TypeError as exc:
                raise ValueError(f"feature {name!r}: unknown dtype {dtype!r}") from exc
            if kind not in "fiub" or len(shape) != 1:
                raise ValueError(f"feature {name!r}: vectors are numeric with shape [n], not {dtype} {shape}")
            if names is not None and len(names) != shape[0]:
                raise ValueError(f"feature {name!r}: {len(names)} names for {shape[0]} values")
        out[name] = {"dtype": dtype, "shape": shape, "names": list(names) if names is not None else None}
    videos = {k for k, ft in out.items() if ft["dtype"] == "video"}
    if image_keys and set(image_keys) != videos:
        raise ValueError(f"image_keys {sorted(image_keys)} must name exactly the video features {sorted(videos)}")
    return out


def _empty_info(fps: int, features: dict, robot_type: str) -> dict:
    """lerobot feature_utils.create_empty_dataset_info, in its key order."""
    return {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": robot_type,
        "total_episodes": 0,
        "total_frames": 0,
        "total_tasks": 0,
        "chunks_size": DEFAULT_CHUNK_SIZE,
        "data_files_size_in_mb": DEFAULT_DATA_FILE_SIZE_IN_MB,
        "video_files_size_in_mb": DEFAULT_VIDEO_FILE_SIZE_IN_MB,
        "fps": fps,
        "splits": {},
        "data_path": DEFAULT_DATA_PATH,
        "video_path": DEFAULT_VIDEO_PATH,
        "features": json.loads(json.dumps(features)),
    }


def _next_file(chunk: int, file: int, chunks_size: int) -> tuple[int, int]:
    """lerobot utils.update_chunk_file_indices: the next file index, rolling over into the next chunk."""
    return (chunk + 1, 0) if file == chunks_size - 1 else (chunk, file + 1)


def _check_meta(meta: dict) -> dict:
    out = {}
    for key, value in meta.items():
        if not isinstance(key, str) or key in _RESERVED_COLUMNS or key.startswith(_RESERVED_PREFIXES):
            raise ValueError(f"Episode.meta key {key!r} is not a string or collides with a LeRobot column")
        if isinstance(value, np.generic):
            value = value.item()
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise ValueError(f"Episode.meta[{key!r}] must be a bool, int, float or str, not {type(value).__name__}")
        out[key] = value
    return out


def _data_table(features: dict, arrays: dict[str, np.ndarray], defaults: dict[str, np.ndarray]) -> pa.Table:
    """One row per frame, columns in feature order; shape [1] as a scalar column, [n] as a fixed-size list (lerobot
    get_hf_features_from_features: Value / Sequence(length=n))."""
    columns = {}
    for key, ft in features.items():
        if ft["dtype"] == "video":
            continue
        values = np.ascontiguousarray(arrays[key] if key in arrays else defaults[key], dtype=ft["dtype"])
        if ft["shape"] == [1]:
            columns[key] = pa.array(values.reshape(-1))
        else:
            columns[key] = pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), ft["shape"][0])
    return pa.table(columns)


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        pq.write_table(table, path, compression="snappy", use_dictionary=True)  # lerobot's ParquetWriter settings
    except (OSError, pa.ArrowException) as exc:
        raise XlhandError(f"cannot write: {_one_line(exc)}", path) from exc
    fsync_file(path)


def _write_episode_rows(rows: list[dict], target: Path) -> None:
    """The episodes metadata file, atomically: columns in first-seen order, types inferred as lerobot's
    ``pa.Table.from_pydict`` does."""
    keys: dict[str, None] = {}
    for r in rows:
        keys.update(dict.fromkeys(r))
    try:
        table = pa.Table.from_pydict({k: [r.get(k) for r in rows] for k in keys})
    except pa.ArrowException as exc:
        raise ValueError(f"episode metadata columns have mixed types: {_one_line(exc)}") from exc
    with _atomic(target) as tmp:
        pq.write_table(table, tmp, compression="snappy", use_dictionary=True)


def _write_tasks(tasks: list[str], target: Path) -> None:
    """lerobot write_tasks: ``DataFrame({"task_index": ...}, index=Index(tasks, name="task")).to_parquet``."""
    import pandas as pd  # lerobot writes tasks with pandas; its index metadata is what lerobot reads back

    frame = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)}, index=pd.Index(tasks, name="task"))
    with _atomic(target) as tmp:
        frame.to_parquet(tmp)


def _pending_path(final: Path, episode_index: int) -> Path:
    final.parent.mkdir(parents=True, exist_ok=True)
    return final.parent / f".{final.name}.ep{episode_index:06d}.pending"


@contextlib.contextmanager
def _atomic(target: Path):
    """A hidden temp path beside ``target`` (a name no ``*.parquet`` glob matches); fsynced and renamed on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.{os.urandom(4).hex()}.partial"
    try:
        yield tmp
        fsync_file(tmp)
        _replace(tmp, target)
    except OSError as exc:
        raise XlhandError(f"cannot write: {_one_line(exc)}", target) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _replace(src: Path, dst: Path) -> None:
    """Rename ``src`` onto ``dst`` and make the rename durable."""
    os.replace(src, dst)
    fsync_dir(dst.parent)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


# -- video -----------------------------------------------------------------------------------------------------------


def _pick_encoder(prefer: str | None = None) -> str:
    """The first encoder of ``ENCODERS`` (or ``prefer``) this PyAV build can open."""
    import av

    for name in ([prefer] if prefer else list(ENCODERS)):
        if name in av.codecs_available:
            with contextlib.suppress(Exception):
                av.codec.Codec(name, "w")
                return name
    if prefer:
        return ""
    raise XlhandError(f"PyAV {av.__version__} has none of the video encoders {list(ENCODERS)}")


def _encode_video(frames: np.ndarray, path: Path, fps: int, encoder: str) -> None:
    """lerobot encode_video_frames: yuv420p, g=2, crf=30, frames pushed through PyAV in order."""
    import av

    if encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")  # SVT-AV1 prints a banner per encoder on stderr unless told not to
    height, width = frames.shape[1:3]
    options = {"g": str(VIDEO_GOP)}
    if encoder != "mpeg4":
        options["crf"] = str(VIDEO_CRF)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with av.open(str(path), "w", format="mp4") as out:
            stream = out.add_stream(encoder, fps, options=options)
            stream.pix_fmt = VIDEO_PIX_FMT
            stream.width, stream.height = width, height
            if encoder == "mpeg4":  # no crf: ask for a bit rate high enough to be near-lossless at any size
                stream.bit_rate = max(1_000_000, width * height * fps * 2)
            for frame in frames:
                out.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            out.mux(stream.encode())
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise XlhandError(f"cannot encode video with {encoder}: {_one_line(exc)}", path) from exc


def _concat_videos(inputs: list[Path], output: Path) -> None:
    """lerobot concatenate_video_files: ffmpeg's concat demuxer, packets remuxed without re-encoding."""
    import av

    listing = output.parent / f".{output.name}.{os.urandom(4).hex()}.ffconcat.partial"
    quoted = [str(p.resolve()).replace("'", "'\\''") for p in inputs]
    listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{q}'\n" for q in quoted), encoding="utf-8")
    try:
        with av.open(str(listing), "r", format="concat", options={"safe": "0"}) as src, \
                av.open(str(output), "w", format="mp4", options={"movflags": "faststart"}) as dst:
            streams = {}
            for s in src.streams:
                if s.type == "video":
                    streams[s.index] = dst.add_stream_from_template(template=s, opaque=True)
                    streams[s.index].time_base = s.time_base
            for packet in src.demux():
                if packet.stream.index not in streams or packet.dts is None:
                    continue
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise XlhandError(f"cannot append the episode's video: {_one_line(exc)}", output) from exc
    finally:
        with contextlib.suppress(OSError):
            listing.unlink()


def _video_info(path: Path) -> dict:
    """lerobot video_utils.get_video_info, in its key order (no audio streams are written)."""
    import av

    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            return {"video.height": stream.height, "video.width": stream.width,
                    "video.codec": stream.codec.canonical_name, "video.pix_fmt": stream.pix_fmt,
                    "video.is_depth_map": False, "video.fps": int(stream.base_rate), "video.channels": 3,
                    "has_audio": len(container.streams.audio) > 0}
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise XlhandError(f"cannot read video: {_one_line(exc)}", path) from exc


def _decode_video(path: Path, from_ts: float, to_ts: float, length: int, fps: int, episode_index: int) -> np.ndarray:
    """The frames with presentation times in [from_ts, to_ts) (half a frame of tolerance), as uint8 (T, H, W, 3)."""
    import av

    half = 0.5 / fps
    frames = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if from_ts > half:  # episodes after the first in a shared file: seek to the keyframe before
                container.seek(math.floor((from_ts - half) / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                t = frame.time
                if t is None or t < from_ts - half:
                    continue
                if t >= to_ts - half:
                    break
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise XlhandError(f"cannot decode video: {_one_line(exc)}", path) from exc
    if len(frames) != length:
        raise XlhandError(f"has {len(frames)} frames for episode {episode_index} in {from_ts:g}..{to_ts:g} s, "
                          f"its metadata says {length}", path)
    return np.stack(frames)


# -- statistics (lerobot compute_stats.py) ----------------------------------------------------------------------------


def _episode_stats(data: dict[str, np.ndarray], features: dict) -> dict[str, dict[str, np.ndarray]]:
    """Per feature: min, max, mean, std, count, q01..q99. Vectors per dimension (shape (n,), (1,) for scalar
    columns); images per channel in [0, 1] with shape (3, 1, 1) and count = the number of sampled frames."""
    return {key: _image_stats(data[key]) if ft["dtype"] == "video" else _vector_stats(data[key])
            for key, ft in features.items()}


def _vector_stats(values: np.ndarray) -> dict[str, np.ndarray]:
    x = values.reshape(len(values), -1)
    f = x.astype(np.float64)
    stats = {"min": x.min(axis=0), "max": x.max(axis=0), "mean": f.mean(axis=0), "std": f.std(axis=0),
             "count": np.array([len(x)])}
    for key, q in zip(QUANTILES, np.quantile(f, list(QUANTILES.values()), axis=0)):
        stats[key] = q
    return stats


def _sample_indices(n: int) -> np.ndarray:
    """lerobot estimate_num_samples + sample_indices: all frames up to 100, then about n**0.75 spread evenly."""
    lowest = min(100, n)
    num = max(lowest, min(int(n**0.75), 10_000))
    return np.round(np.linspace(0, n - 1, num)).astype(int)


def _image_stats(frames: np.ndarray) -> dict[str, np.ndarray]:
    """Exact per-channel statistics of the sampled frames from a 256-bin histogram per channel."""
    idx = _sample_indices(len(frames))
    images = frames[idx]
    height, width = images.shape[1:3]
    if max(height, width) >= 300:  # lerobot auto_downsample_height_width: stride down to about 150 pixels
        step = int(width / 150) if width > height else int(height / 150)
        images = images[:, ::step, ::step]
    levels = np.arange(256, dtype=np.float64)
    per_channel: dict[str, list[float]] = {k: [] for k in ("min", "max", "mean", "std", *QUANTILES)}
    for c in range(3):
        counts = np.bincount(images[..., c].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        mean = (counts * levels).sum() / total
        present = np.flatnonzero(counts)
        per_channel["min"].append(levels[present[0]])
        per_channel["max"].append(levels[present[-1]])
        per_channel["mean"].append(mean)
        per_channel["std"].append(math.sqrt((counts * (levels - mean) ** 2).sum() / total))
        cumulative = np.cumsum(counts)
        for key, q in QUANTILES.items():  # numpy's "linear" quantile over the sorted pixel values
            pos = q * (total - 1)
            lo, hi = math.floor(pos), min(math.floor(pos) + 1, int(total) - 1)
            v_lo, v_hi = np.searchsorted(cumulative, [lo, hi], side="right")
            per_channel[key].append(v_lo + (pos - lo) * (v_hi - v_lo))
    stats = {k: np.asarray(v, dtype=np.float64).reshape(3, 1, 1) / 255.0 for k, v in per_channel.items()}
    return {"min": stats["min"], "max": stats["max"], "mean": stats["mean"], "std": stats["std"],
            "count": np.array([len(idx)]), **{k: stats[k] for k in QUANTILES}}


def _aggregate_stats(stats_list: list[dict]) -> dict[str, dict[str, np.ndarray]]:
    """lerobot aggregate_stats: min of mins, max of maxes, count-weighted mean, pooled std, count-weighted quantiles."""
    out = {}
    for key in dict.fromkeys(k for s in stats_list for k in s):
        items = [s[key] for s in stats_list if key in s]
        means = np.stack([s["mean"] for s in items])
        variances = np.stack([s["std"] ** 2 for s in items])
        counts = np.stack([s["count"] for s in items])
        total = counts.sum(axis=0)
        while counts.ndim < means.ndim:
            counts = np.expand_dims(counts, axis=-1)
        mean = (means * counts).sum(axis=0) / total
        variance = ((variances + (means - mean) ** 2) * counts).sum(axis=0) / total
        agg = {"min": np.min(np.stack([s["min"] for s in items]), axis=0),
               "max": np.max(np.stack([s["max"] for s in items]), axis=0),
               "mean": mean, "std": np.sqrt(variance), "count": total}
        for q in QUANTILES:
            if all(q in s for s in items):
                agg[q] = (np.stack([s[q] for s in items]) * counts).sum(axis=0) / total
        out[key] = agg
    return out


def _stats_from_row(row: dict, features: dict) -> dict[str, dict[str, np.ndarray]]:
    out = {}
    for key in features:
        stats = {s: np.asarray(row[f"stats/{key}/{s}"]) for s in ("min", "max", "mean", "std", "count", *QUANTILES)
                 if row.get(f"stats/{key}/{s}") is not None}
        if {"min", "max", "mean", "std", "count"} <= set(stats):
            out[key] = stats
    return out


def _stats_json(stats: dict[str, dict[str, np.ndarray]]) -> str:
    """lerobot write_stats: nested lists, indent 4."""
    return json.dumps({k: {s: np.asarray(v).tolist() for s, v in st.items()} for k, st in stats.items()},
                      indent=4, ensure_ascii=False) + "\n"
