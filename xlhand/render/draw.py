"""2-D work on rendered pictures with Pillow: fingertip markers, pinch lines, labelled grids, animation files."""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from xlhand._util.atomic import atomic_path
from xlhand.errors import XlhandError

# one colour per finger role, used by markers and pinch lines
FINGER_RGB = {
    "thumb": (215, 40, 40),
    "index": (30, 150, 60),
    "middle": (40, 90, 215),
    "ring": (210, 150, 20),
    "little": (150, 60, 180),
}
LABEL_RGB = (40, 40, 40)
ANIMATION_SUFFIXES = (".gif", ".mp4")


def font(px: int) -> ImageFont.ImageFont:
    """Pillow's bundled font at ``px`` pixels (no system fonts needed)."""
    try:
        return ImageFont.load_default(size=px)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def overlay(image: np.ndarray, tips_px: np.ndarray, fingers: list[str], *, markers: bool, pinch_lines: bool,
            occluded: np.ndarray | None = None, tips_m: np.ndarray | None = None) -> np.ndarray:
    """Draw fingertip markers and thumb-to-finger lines on ``image`` ``(H, W, 3)`` uint8.

    ``tips_px`` ``(F, 2)`` pixel positions in ``fingers`` order; ``occluded`` ``(F,)`` marks tips hidden behind
    the hand (drawn hollow); ``tips_m`` ``(F, 3)`` metres, to label each pinch line with its length in mm.
    """
    if not (markers or pinch_lines):
        return image
    h, w = image.shape[:2]
    img = Image.fromarray(image)
    draw = ImageDraw.Draw(img)
    scale = min(h, w) / 256
    r = max(2.0, 5.0 * scale)
    if pinch_lines and "thumb" in fingers:
        t = fingers.index("thumb")
        small = font(max(9, round(11 * scale)))
        for i, role in enumerate(fingers):
            if i == t:
                continue
            a, b = tuple(tips_px[t]), tuple(tips_px[i])
            draw.line([a, b], fill=FINGER_RGB.get(role, LABEL_RGB), width=max(1, round(2 * scale)))
            if tips_m is not None:
                mm = 1000 * float(np.linalg.norm(tips_m[t] - tips_m[i]))
                mid = ((a[0] + b[0]) / 2 + 3 * scale, (a[1] + b[1]) / 2)
                draw.text(mid, f"{mm:.0f}", fill=FINGER_RGB.get(role, LABEL_RGB), font=small)
    if markers:
        # the thumb first and larger, so a fingertip on it (a pinch) leaves a red ring around its own marker
        for i in sorted(range(len(fingers)), key=lambda i: fingers[i] != "thumb"):
            role = fingers[i]
            x, y = tips_px[i]
            rr = 1.45 * r if role == "thumb" else r
            box = [x - rr, y - rr, x + rr, y + rr]
            colour = FINGER_RGB.get(role, LABEL_RGB)
            if occluded is not None and occluded[i]:
                draw.ellipse(box, outline=colour, width=max(1, round(1.5 * scale)))
            else:
                draw.ellipse(box, fill=colour, outline=(255, 255, 255), width=max(1, round(scale)))
    return np.asarray(img)


def grid(images: list[np.ndarray], labels: list[str], *, columns: int | None = None, title: str | None = None,
         background=(255, 255, 255)) -> np.ndarray:
    """Tile equally sized pictures with a label under each (and an optional title) -> ``(H, W, 3)`` uint8."""
    if not images:
        raise ValueError("a grid needs at least one picture")
    h, w = images[0].shape[:2]
    n = len(images)
    columns = columns or (n if n <= 5 else math.ceil(math.sqrt(n)))
    rows = math.ceil(n / columns)
    label_px = max(11, round(h / 16))
    label_h = round(label_px * 1.7)
    title_h = round(label_px * 2.0) if title else 0
    canvas = Image.new("RGB", (columns * w, title_h + rows * (h + label_h)), background)
    draw = ImageDraw.Draw(canvas)
    f = font(label_px)
    if title:
        draw.text((columns * w / 2, title_h / 2), title, fill=LABEL_RGB, font=font(round(label_px * 1.15)),
                  anchor="mm")
    for k, (im, label) in enumerate(zip(images, labels, strict=True)):
        r, c = divmod(k, columns)
        x, y = c * w, title_h + r * (h + label_h)
        canvas.paste(Image.fromarray(im), (x, y))
        draw.text((x + w / 2, y + h + label_h / 2), _fit(draw, label, f, w - 4), fill=LABEL_RGB, font=f,
                  anchor="mm")
    return np.asarray(canvas)


def _fit(draw: ImageDraw.ImageDraw, text: str, f, width: float) -> str:
    if draw.textlength(text, font=f) <= width:
        return text
    while text and draw.textlength(text + "...", font=f) > width:
        text = text[:-1]
    return text + "..."


def write_image(image: np.ndarray, path: str | Path) -> Path:
    """Write a picture (format from the suffix, e.g. .png) atomically: a temporary file, then a rename."""
    path = Path(path)
    with _atomic(path) as tmp:
        Image.fromarray(image).save(tmp, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
    return path


def write_animation(frames: Iterable[np.ndarray], path: str | Path, fps: float = 16.0) -> Path:
    """Write frames ``(H, W, 3)`` uint8 to a looping GIF (Pillow) or an H.264 MP4 (imageio-ffmpeg), atomically.

    The file appears complete or not at all: frames go to a temporary file beside ``path``, renamed at the end.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in ANIMATION_SUFFIXES:
        raise XlhandError(f"unsupported animation type {suffix or '(none)'!r}; use .gif or .mp4", path)
    frames = iter(frames)
    with _atomic(path) as tmp:
        if suffix == ".gif":
            _write_gif(list(frames), tmp, fps)
        else:
            _write_mp4(frames, tmp, fps)
    return path


def _write_gif(frames: list[np.ndarray], tmp: Path, fps: float) -> None:
    """One palette for all frames (from a montage of up to 8 of them), no dithering: small files, steady colours."""
    if not frames:
        raise XlhandError("no frames to write", tmp.name)
    sample = frames[:: max(1, len(frames) // 8)][:8]
    palette = Image.fromarray(np.concatenate(sample, axis=0)).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0,
                   optimize=True, disposal=1)


def _write_mp4(frames: Iterable[np.ndarray], tmp: Path, fps: float) -> None:
    try:
        import imageio.v2 as imageio
        import imageio_ffmpeg  # noqa: F401  (the ffmpeg binary imageio uses)
    except ImportError:
        raise XlhandError("MP4 needs imageio and imageio-ffmpeg (pip install 'xlhand[render]'); or write a .gif",
                          tmp.name) from None
    writer = imageio.get_writer(str(tmp), format="FFMPEG", fps=fps, codec="libx264", quality=7,
                                pixelformat="yuv420p", macro_block_size=1)
    try:
        for f in frames:
            writer.append_data(_pad_even(f))
    finally:
        writer.close()


def _pad_even(frame: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: pad with the last row/column."""
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def _atomic(path: Path):
    """The shared atomic writer (:func:`xlhand._util.atomic.atomic_path`), into an existing folder only."""
    if not path.parent.is_dir():
        raise XlhandError("the folder does not exist", path.parent)
    return atomic_path(path)
