"""The growing first stream's manifests, written by us while ffmpeg is still writing its segments: pure.

While the stream grows, each HLS media playlist is an EVENT playlist (segments only ever appended, no
ENDLIST) and the DASH MPD is ``dynamic`` with a SegmentTimeline; once the source is done they are
closed: ENDLIST, and a ``static`` MPD with the presentation's duration. Both start players at the
beginning: ``EXT-X-START:TIME-OFFSET=0`` (hls.js honours it; without it a player joins an EVENT
playlist near its live edge), and the DASH player is given start time 0 by static/js/player.js.

The MPD's ``availabilityStartTime`` lies one source duration before the stream began: every listed
segment is then already "available" by the wall clock (a DASH player otherwise waits until
availabilityStartTime + the segment's end), and ``timeShiftBufferDepth`` covers the whole
presentation, so a learner can seek back to 0 but only as far forward as the segments listed.

Layout (relative to the version prefix): ``video.m3u8`` and ``video/init.mp4``, ``video/<n>.m4s``;
the same for ``audio``; the HLS master and the MPD at the top (media_pipeline.layout names).
See docs/adr/0031-growing-first-stream.md.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from media_pipeline.fmp4 import SegmentTiming, Track

# An MPD update at most this often (also the HLS segment length the encode path aims at).
UPDATE_SECONDS = 2


@dataclass
class Stream:
    """One rendition being written: its init segment's facts and its segments so far, numbered from 0."""

    name: str  # "video" or "audio": the folder and the playlist's name
    track: Track
    segments: list[SegmentTiming] = field(default_factory=list)

    def seconds(self) -> float:
        if not self.segments:
            return 0.0
        last = self.segments[-1]
        return (last.start + last.duration - self.segments[0].start) / self.track.timescale

    @property
    def playlist_name(self) -> str:
        return f"{self.name}.m3u8"

    def segment_name(self, number: int) -> str:
        return f"{self.name}/{number}.m4s"

    @property
    def init_name(self) -> str:
        return f"{self.name}/init.mp4"


def hls_media_playlist(stream: Stream, *, target_duration: int, closed: bool) -> str:
    """EVENT while growing, then the same lines plus ENDLIST: a player's earlier copy stays a prefix."""
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:7",
        f"#EXT-X-TARGETDURATION:{target_duration}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:EVENT",
        "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-MAP:URI="{stream.init_name}"',
    ]
    for number, segment in enumerate(stream.segments):
        lines += [f"#EXTINF:{segment.duration / stream.track.timescale:.6f},", stream.segment_name(number)]
    if closed:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def target_duration(streams: list[Stream], *, planned: int) -> int:
    """EXT-X-TARGETDURATION may not change while the playlist grows: the planned one, unless a finished
    stream turned out longer (then it is only used once closed)."""
    longest = max((s.duration / st.track.timescale for st in streams for s in st.segments), default=0.0)
    return max(planned, round(longest + 0.4999))


def hls_master(video: Stream, audio: Stream | None, *, bandwidth: int) -> str:
    codecs = ",".join([video.track.codec, *([audio.track.codec] if audio else [])])
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START:TIME-OFFSET=0,PRECISE=YES"]
    if audio is not None:
        lines.append(
            '#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,'
            f'CHANNELS="2",URI="{audio.playlist_name}"'
        )
    size = f"{video.track.width}x{video.track.height}"
    inf = f'#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},CODECS="{codecs}",RESOLUTION={size}'
    lines += [inf + (',AUDIO="audio"' if audio else ""), video.playlist_name]
    return "\n".join(lines) + "\n"


def _duration(seconds: float) -> str:
    return f"PT{seconds:.3f}S"


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _timeline(stream: Stream) -> str:
    """SegmentTimeline with runs of equal durations folded (``r``), as packagers write them."""
    runs: list[list[int]] = []  # [start, duration, repeat]
    for segment in stream.segments:
        last = runs[-1] if runs else None
        if last and last[1] == segment.duration and last[0] + last[1] * (last[2] + 1) == segment.start:
            last[2] += 1
        else:
            runs.append([segment.start, segment.duration, 0])
    return "".join(f'<S t="{t}" d="{d}"' + (f' r="{r}"' if r else "") + "/>" for t, d, r in runs)


def _adaptation_set(stream: Stream, *, set_id: int, bandwidth: int) -> str:
    track = stream.track
    if track.kind == "video":
        size = f'width="{track.width}" height="{track.height}"'
        head = f'<AdaptationSet id="{set_id}" contentType="video" mimeType="video/mp4" segmentAlignment="true">'
        representation = f'<Representation id="{stream.name}" codecs="{track.codec}" bandwidth="{bandwidth}" {size}>'
    else:
        head = f'<AdaptationSet id="{set_id}" contentType="audio" mimeType="audio/mp4" segmentAlignment="true">'
        representation = f'<Representation id="{stream.name}" codecs="{track.codec}" bandwidth="{bandwidth}">'
    template = (
        f'<SegmentTemplate timescale="{track.timescale}" initialization="{stream.init_name}" '
        f'media="{stream.name}/$Number$.m4s" startNumber="0">'
        f"<SegmentTimeline>{_timeline(stream)}</SegmentTimeline></SegmentTemplate>"
    )
    return f"    {head}\n      {representation}\n        {template}\n      </Representation>\n    </AdaptationSet>\n"


def dash_mpd(
    video: Stream,
    audio: Stream | None,
    *,
    video_bandwidth: int,
    audio_bandwidth: int,
    closed: bool,
    began: datetime,
    source_seconds: float,
    now: datetime,
) -> str:
    """``dynamic`` (refreshed every UPDATE_SECONDS) while growing, ``static`` once closed."""
    streams = [video, *([audio] if audio else [])]
    if closed:
        duration = max(stream.seconds() for stream in streams)
        timing = f'type="static" mediaPresentationDuration="{_duration(duration)}"'
    else:
        window = math.ceil(2 * source_seconds) + 24 * 3600
        available = began - timedelta(seconds=math.ceil(source_seconds))
        timing = (
            f'type="dynamic" availabilityStartTime="{_timestamp(available)}" '
            f'publishTime="{_timestamp(now)}" minimumUpdatePeriod="PT{UPDATE_SECONDS}S" '
            f'timeShiftBufferDepth="PT{window}S"'
        )
    profile = "urn:mpeg:dash:profile:isoff-live:2011"
    sets = _adaptation_set(video, set_id=0, bandwidth=video_bandwidth)
    if audio is not None:
        sets += _adaptation_set(audio, set_id=1, bandwidth=audio_bandwidth)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="{profile}" {timing} minBufferTime="PT2S">\n'
        '  <Period id="0" start="PT0S">\n'
        f"{sets}"
        "  </Period>\n"
        "</MPD>\n"
    )
