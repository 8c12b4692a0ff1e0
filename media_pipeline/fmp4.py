"""Read what manifests need from fragmented MP4 (CMAF) files ffmpeg wrote: pure, bytes in, facts out.

The growing first stream (steps.provisional) writes its own HLS playlists and DASH MPD while ffmpeg is
still writing segments, so it needs, from each init segment, the track's timescale and its codec string
(``avc1.64001f``, ``mp4a.40.2``) and picture size; and from each media segment, its start
(``tfdt``) and duration (the ``trun`` sample durations) in that timescale. Only the boxes ffmpeg's
``hls``/``mp4`` muxers write are read (ISO/IEC 14496-12); anything else raises ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

# Boxes that only contain other boxes, on the way to the ones read here.
_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"moof", b"traf"}


@dataclass(frozen=True)
class Track:
    kind: str  # "video" or "audio"
    timescale: int
    codec: str  # RFC 6381 codec string
    width: int = 0
    height: int = 0


@dataclass(frozen=True)
class SegmentTiming:
    start: int  # baseMediaDecodeTime of its first fragment, in the track's timescale
    duration: int  # the sum of its samples' durations, same unit


def _boxes(data: bytes, start: int = 0, end: int | None = None) -> Iterator[tuple[bytes, int, int]]:
    """``(type, payload offset, box end)`` of each box in ``data[start:end]``."""
    end = len(data) if end is None else end
    offset = start
    while offset + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, offset)
        header = 8
        if size == 1:
            if offset + 16 > end:
                raise ValueError("a box header is cut short")
            size = struct.unpack_from(">Q", data, offset + 8)[0]
            header = 16
        elif size == 0:
            size = end - offset
        if size < header or offset + size > end:
            raise ValueError(f"box {kind!r} at {offset} overruns its parent")
        yield kind, offset + header, offset + size
        offset += size


def _find(data: bytes, path: list[bytes], start: int = 0, end: int | None = None) -> tuple[int, int]:
    """Payload offset and end of the first box along ``path`` (e.g. ``[b"moov", b"trak"]``)."""
    for kind, payload, box_end in _boxes(data, start, end):
        if kind == path[0]:
            return (payload, box_end) if len(path) == 1 else _find(data, path[1:], payload, box_end)
    raise ValueError(f"no {b'/'.join(path).decode()} box")


def init_track(init: bytes) -> Track:
    """The one track of an init segment (ffmpeg's HLS muxer writes one per output)."""
    mdhd, _ = _find(init, [b"moov", b"trak", b"mdia", b"mdhd"])
    version = init[mdhd]
    timescale = struct.unpack_from(">I", init, mdhd + (20 if version == 1 else 12))[0]
    hdlr, _ = _find(init, [b"moov", b"trak", b"mdia", b"hdlr"])
    handler = init[hdlr + 8 : hdlr + 12]
    stsd, stsd_end = _find(init, [b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd"])
    # stsd: version/flags (4), entry count (4), then the sample entries.
    kind, entry, entry_end = next(_boxes(init, stsd + 8, stsd_end))
    if handler == b"vide" and kind in (b"avc1", b"avc3"):
        # VisualSampleEntry: 6 reserved + 2 data reference index + 16 pre-defined/reserved, then size.
        width, height = struct.unpack_from(">HH", init, entry + 24)
        avcc, _ = _find(init, [b"avcC"], entry + 78, entry_end)
        profile, compatibility, level = init[avcc + 1], init[avcc + 2], init[avcc + 3]
        codec = f"{kind.decode()}.{profile:02x}{compatibility:02x}{level:02x}"
        return Track(kind="video", timescale=timescale, codec=codec, width=width, height=height)
    if handler == b"soun" and kind == b"mp4a":
        # AudioSampleEntry: 6 + 2 + 8 reserved + channels, sample size, pre-defined, reserved, rate = 28.
        esds, esds_end = _find(init, [b"esds"], entry + 28, entry_end)
        return Track(kind="audio", timescale=timescale, codec=f"mp4a.40.{_aac_object_type(init, esds + 4, esds_end)}")
    raise ValueError(f"a {handler.decode(errors='replace')} track of {kind.decode(errors='replace')}")


def _descriptor(data: bytes, offset: int) -> tuple[int, int, int]:
    """An MPEG-4 descriptor at ``offset``: (tag, payload offset, payload length)."""
    tag, offset, length = data[offset], offset + 1, 0
    for _ in range(4):
        byte = data[offset]
        offset += 1
        length = (length << 7) | (byte & 0x7F)
        if not byte & 0x80:
            break
    return tag, offset, length


def _aac_object_type(data: bytes, offset: int, end: int) -> int:
    """The audio object type of the AudioSpecificConfig in an esds (2 for AAC-LC, 5 for HE-AAC)."""
    tag, payload, _ = _descriptor(data, offset)
    if tag != 0x03:
        raise ValueError("esds without an ES descriptor")
    flags = data[payload + 2]
    url_length = 1 + data[payload + 3] if flags & 0x40 else 0  # (a URL: after the depends-on id, if any)
    payload += 3 + (2 if flags & 0x80 else 0) + url_length + (2 if flags & 0x20 else 0)
    tag, payload, _ = _descriptor(data, payload)
    if tag != 0x04:
        raise ValueError("esds without a decoder configuration")
    tag, payload, _ = _descriptor(data, payload + 13)
    if tag != 0x05 or payload >= end:
        raise ValueError("esds without an AudioSpecificConfig")
    object_type = data[payload] >> 3
    return 32 + (((data[payload] & 0x07) << 3) | (data[payload + 1] >> 5)) if object_type == 31 else object_type


def segment_timing(segment: bytes) -> SegmentTiming:
    """Start and duration of a media segment (one or more moof+mdat fragments of one track)."""
    start: int | None = None
    end = 0
    for kind, payload, box_end in _boxes(segment):
        if kind != b"moof":
            continue
        traf, traf_end = _find(segment, [b"traf"], payload, box_end)
        default_duration = 0
        base: int | None = None
        duration = 0
        for child, child_payload, _ in _boxes(segment, traf, traf_end):
            flags = int.from_bytes(segment[child_payload + 1 : child_payload + 4], "big")
            if child == b"tfhd":
                offset = child_payload + 8  # version/flags, track id
                offset += 8 if flags & 0x01 else 0  # base data offset
                offset += 4 if flags & 0x02 else 0  # sample description index
                if flags & 0x08:
                    default_duration = struct.unpack_from(">I", segment, offset)[0]
            elif child == b"tfdt":
                version = segment[child_payload]
                base = struct.unpack_from(">Q" if version == 1 else ">I", segment, child_payload + 4)[0]
            elif child == b"trun":
                duration += _trun_duration(segment, child_payload, flags, default_duration)
        if base is None:
            raise ValueError("a fragment without tfdt")
        start = base if start is None else start
        end = max(end, base + duration)
    if start is None:
        raise ValueError("no fragment in the segment")
    return SegmentTiming(start=start, duration=end - start)


def _trun_duration(data: bytes, payload: int, flags: int, default_duration: int) -> int:
    count = struct.unpack_from(">I", data, payload + 4)[0]
    offset = payload + 8 + (4 if flags & 0x01 else 0) + (4 if flags & 0x04 else 0)
    if not flags & 0x100:
        return count * default_duration
    field_size = 4 * sum(1 for bit in (0x100, 0x200, 0x400, 0x800) if flags & bit)
    return sum(struct.unpack_from(">I", data, offset + i * field_size)[0] for i in range(count))
