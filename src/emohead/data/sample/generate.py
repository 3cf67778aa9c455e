"""Write the generated dataset in MEAD's layout: H.264 mp4 per clip (with its audio track, as MEAD's)
and the clip's audio as AAC .m4a (or .wav), 48 kHz stereo."""

from __future__ import annotations

import functools
import subprocess
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emohead.data.layout import ClipKey, levels_for
from emohead.data.sample.config import SampleConfig, check_actor_ids
from emohead.data.sample.identities import identity_for
from emohead.data.sample.performance import Performance, perform
from emohead.data.sample.scene import render_frame, scene_for
from emohead.errors import InputError
from emohead.media import ffmpeg_exe
from emohead.parallel import check_failures, map_clips

VIDEO_CRF = 18
AUDIO_BITRATE = "192k"


def clip_keys(config: SampleConfig, emotions: Sequence[str], levels: Sequence[int], max_sentences: int = 0,
              actors: Sequence[str] | None = None) -> list[ClipKey]:
    """Every (actor, emotion, level, sentence) to generate; neutral has level 1 only, as in MEAD."""
    actors = tuple(actors) if actors is not None else config.actors
    check_actor_ids(actors, "actors")
    sentences = min(config.sentences, max_sentences) if max_sentences > 0 else config.sentences
    return [
        ClipKey(actor, emotion, level, sentence)
        for actor in actors
        for emotion in emotions
        for level in levels_for(emotion)
        if level in levels
        for sentence in range(1, sentences + 1)
    ]


def render_video(performance: Performance, width: int, height: int) -> np.ndarray:
    scene = scene_for(performance.key.actor, width, height)
    return np.stack([render_frame(scene, performance.landmarks[i], performance.head[i])
                     for i in range(performance.n_frames)])


def write_wav(path: Path, audio: np.ndarray, sample_rate_hz: int, channels: int = 2) -> None:
    """16-bit PCM; the mono speech is copied to both channels (MEAD's audio is stereo)."""
    pcm = np.round(np.clip(audio, -1, 1) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(sample_rate_hz)
        out.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())


def encode_clip(frames: np.ndarray, wav: Path, fps: int, video_path: Path, audio_path: Path | None) -> None:
    """One ffmpeg run: raw RGB frames on stdin + the wav -> H.264/AAC mp4, and the AAC .m4a when asked."""
    n, h, w, _ = frames.shape
    args = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
            "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", str(fps), "-i", "-", "-i", str(wav),
            "-map", "0:v:0", "-map", "1:a:0", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-crf", str(VIDEO_CRF),
            "-preset", "veryfast", "-c:a", "aac", "-b:a", AUDIO_BITRATE, "-movflags", "+faststart",
            str(video_path)]
    if audio_path is not None:
        args += ["-map", "1:a:0", "-vn", "-c:a", "aac", "-b:a", AUDIO_BITRATE, str(audio_path)]
    proc = subprocess.run(args, input=np.ascontiguousarray(frames).tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        message = proc.stderr.decode(errors="replace").strip().splitlines()
        raise InputError(f"{video_path}: cannot encode ({message[-1] if message else 'ffmpeg failed'})")


def write_clip(key: ClipKey, config: SampleConfig, out_root: Path) -> ClipKey:
    """Perform, render and encode one clip at its MEAD paths."""
    performance = perform(config, key)
    frames = render_video(performance, config.width, config.height)
    video_path = out_root / key.video_relpath("front")
    audio_path = out_root / key.audio_relpath(f".{config.audio_format}")
    video_path.parent.mkdir(parents=True, exist_ok=True)
    audio_path.parent.mkdir(parents=True, exist_ok=True)
    wav = audio_path if config.audio_format == "wav" else audio_path.with_name(f".{audio_path.stem}.tmp.wav")
    try:
        write_wav(wav, performance.audio, config.sample_rate_hz)
        encode_clip(frames, wav, config.fps, video_path, None if wav == audio_path else audio_path)
    finally:
        if wav != audio_path:
            wav.unlink(missing_ok=True)
    return key


def generate_dataset(config: SampleConfig, out_root: Path, emotions: Sequence[str], levels: Sequence[int],
                     max_sentences: int = 0, actors: Sequence[str] | None = None) -> list[ClipKey]:
    """Generate every clip of the selection under out_root in MEAD's layout; returns the keys written."""
    out_root = Path(out_root)
    keys = clip_keys(config, emotions, levels, max_sentences, actors)
    for actor in dict.fromkeys(key.actor for key in keys):
        identity_for(actor)  # dlib runs here once; forked workers inherit the cached identities
    outcomes = map_clips(functools.partial(write_clip, config=config, out_root=out_root), keys,
                         config.workers, desc="generate sample clips")
    check_failures(outcomes, 0.0, "generated clips", lambda key: key.clip_id)
    return [outcome.result for outcome in outcomes]
