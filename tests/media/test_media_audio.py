"""Tone source, 20 ms Opus encoding, decoding, and the decoded tone's pitch."""

from __future__ import annotations

import itertools
from fractions import Fraction

import av
import numpy as np
import numpy.typing as npt
import pytest

from clave.media import EncodedChunk, MediaError, OpusDecoder, OpusEncoder, ToneSource

# Opus TOC configurations (RFC 6716 section 3.1) whose frame size is 20 ms.
_TOC_20MS = {1, 5, 9, 13, 15, 19, 23, 27, 31}


def _encode_tone(frequency: float, n: int) -> list[EncodedChunk]:
    source = ToneSource(frequency)
    encoder = OpusEncoder()
    chunks: list[EncodedChunk] = []
    for _ in range(n):
        chunks += encoder.encode(source.next_frame())
    return chunks


def _peak_hz(pcm: npt.NDArray[np.float32], sample_rate: int = 48000) -> float:
    window = np.hanning(pcm.size)
    spectrum = np.abs(np.fft.rfft(pcm * window))
    return float(np.argmax(spectrum) * sample_rate / pcm.size)


def test_tone_source_frames() -> None:
    source = ToneSource()
    first, second = source.next_frame(), source.next_frame()
    assert (first.samples, first.sample_rate, first.format.name) == (960, 48000, "s16")
    assert first.layout.nb_channels == 1
    assert (first.pts, second.pts) == (0, 960)
    assert first.time_base == second.time_base == Fraction(1, 48000)
    # Phase-continuous: concatenated frames equal one long sine.
    pcm = np.concatenate([first.to_ndarray()[0], second.to_ndarray()[0]]).astype(np.float64)
    expected = 0.3 * 32767 * np.sin(2 * np.pi * 440 * np.arange(1920) / 48000)
    assert np.max(np.abs(pcm - expected)) <= 1.0
    assert source.frame_count == 2
    assert source.next_frame(10).pts == 9600


def test_tone_source_stereo() -> None:
    frame = ToneSource(channels=2).next_frame()
    assert frame.layout.nb_channels == 2
    assert frame.to_ndarray().shape == (1, 1920)  # packed s16, interleaved


def test_one_20ms_packet_per_frame() -> None:
    chunks = _encode_tone(440.0, 50)
    assert len(chunks) == 50
    assert [c.timestamp_us for c in chunks[:3]] == [0, 20_000, 40_000]
    assert all(c.kind == "audio" and c.keyframe for c in chunks)
    for chunk in chunks:
        toc = chunk.data[0]
        assert toc >> 3 in _TOC_20MS
        assert toc & 3 == 0  # one frame per packet


def test_decode_gives_960_samples_per_packet() -> None:
    chunks = _encode_tone(440.0, 25)
    decoder = OpusDecoder()
    assert [decoder.decode(c.data) for c in chunks] == [960] * 25
    assert decoder.packets_decoded == 25 and decoder.samples_decoded == 24_000


@pytest.mark.parametrize("frequency", [440.0, 1000.0])
def test_decoded_tone_has_the_right_pitch(frequency: float) -> None:
    chunks = _encode_tone(frequency, 50)
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode_pcm(c.data)[0] for c in chunks])
    assert pcm.size == 48_000
    body = pcm[4800:]  # skip the encoder's start-up
    assert abs(_peak_hz(body) - frequency) < 5
    # Most of the energy is within +-50 Hz of the tone.
    spectrum = np.abs(np.fft.rfft(body * np.hanning(body.size))) ** 2
    freqs = np.fft.rfftfreq(body.size, 1 / 48000)
    near = spectrum[np.abs(freqs - frequency) < 50].sum()
    assert near / spectrum.sum() > 0.9
    assert 0.1 < np.sqrt(np.mean(body**2)) < 0.4  # amplitude 0.3 -> rms ~0.21


def test_bitrate_near_target() -> None:
    chunks = _encode_tone(440.0, 250)  # 5 s
    kbps = sum(len(c.data) for c in chunks) * 8 / 5 / 1000
    assert 24 <= kbps <= 40, kbps


def test_flush_emits_tail_and_closes() -> None:
    source = ToneSource()
    encoder = OpusEncoder()
    chunks = [c for _ in range(10) for c in encoder.encode(source.next_frame())]
    tail = encoder.flush()
    assert len(chunks) == 10
    assert len(tail) == 1 and tail[0].timestamp_us == 200_000
    assert encoder.flush() == []
    with pytest.raises(MediaError):
        encoder.encode(source.next_frame())


def test_other_rates_layouts_and_frame_sizes_are_reframed() -> None:
    source = ToneSource(frequency=440.0, sample_rate=44100, channels=2)
    assert source.samples_per_frame == 882
    encoder = OpusEncoder()
    chunks = [c for _ in range(100) for c in encoder.encode(source.next_frame())]
    chunks += encoder.flush()
    # 2 s of input -> 100 packets of 20 ms, plus the flushed tail.
    assert 100 <= len(chunks) <= 102
    stamps = [c.timestamp_us for c in chunks]
    assert stamps[:3] == [0, 20_000, 40_000]
    assert all(b > a for a, b in itertools.pairwise(stamps))
    decoder = OpusDecoder()
    pcm = np.concatenate([decoder.decode_pcm(c.data)[0] for c in chunks])
    assert abs(_peak_hz(pcm[4800:48000]) - 440.0) < 5


def test_partial_frames_are_buffered() -> None:
    encoder = OpusEncoder()
    pcm = np.zeros((1, 480), dtype=np.int16)
    frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    frame.sample_rate = 48000
    assert encoder.encode(frame, timestamp_us=1_000_000) == []
    second = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
    second.sample_rate = 48000
    chunks = encoder.encode(second)
    assert len(chunks) == 1 and chunks[0].timestamp_us == 1_000_000


def test_decoder_survives_garbage() -> None:
    decoder = OpusDecoder()
    rng = np.random.default_rng(3)
    good = _encode_tone(440.0, 3)
    for data in [b"", b"\xff", b"\xff\xff\xff\xff", rng.bytes(2000)]:
        decoder.decode(data)
    assert decoder.errors >= 2 and decoder.last_error
    assert decoder.decode(good[0].data) == 960
    for _ in range(200):
        decoder.decode(rng.bytes(int(rng.integers(0, 200))))
    assert decoder.decode(good[1].data) == 960


def test_extradata_is_opus_head() -> None:
    assert OpusEncoder().extradata.startswith(b"OpusHead")


def test_bad_configuration_raises_media_error() -> None:
    with pytest.raises(MediaError):
        OpusEncoder(sample_rate=44100)
    with pytest.raises(MediaError):
        OpusEncoder(channels=3)
    with pytest.raises(MediaError):
        ToneSource(frequency=30_000.0)
    with pytest.raises(MediaError):
        OpusDecoder(sample_rate=22050)
