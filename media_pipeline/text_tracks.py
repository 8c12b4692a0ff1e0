"""Captions and chapters: SRT or WebVTT in, validated WebVTT out, and the manifest entries that carry them.

Pure functions (no Django, no I/O) so every rule is unit-tested. Educators' files are rewritten into
one canonical WebVTT form (cues only, in order) instead of being stored as uploaded: a player then never
meets a file we did not understand, and a version's text tracks are byte-stable for the same input.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import asdict, dataclass

CAPTIONS = "subtitles"
CHAPTERS = "chapters"
KINDS = (CAPTIONS, CHAPTERS)
HLS_GROUP = "subs"
CHAPTERS_FILE = "chapters.vtt"
MAX_BYTES = 2 * 1024 * 1024
# A cue may end this much after the video (encoders round durations; an SRT often ends on a whole second).
END_TOLERANCE_SECONDS = 1.0

_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")
_TIME = r"(?:(\d{1,3}):)?([0-5]\d):([0-5]\d)[.,](\d{3})"
_TIMING = re.compile(rf"^\s*{_TIME}\s+-->\s+{_TIME}(.*)$")
_SRT_ONLY_TAGS = re.compile(r"</?font[^>]*>|\{\\[^}]*\}", re.IGNORECASE)


class TextTrackInvalid(ValueError):
    """A caption or chapters file we refuse, with a reason written for the educator."""


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str
    identifier: str = ""
    settings: str = ""


@dataclass(frozen=True)
class TextTrack:
    """One track a version carries: captions in one language, or the lesson's chapters."""

    kind: str
    language: str
    label: str
    vtt: str

    @property
    def file_name(self) -> str:
        return CHAPTERS_FILE if self.kind == CHAPTERS else f"subs_{self.language.lower()}.vtt"

    @property
    def playlist_name(self) -> str:
        return f"subs_{self.language.lower()}.m3u8"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def language_valid(code: str) -> bool:
    """A BCP 47 tag in the shape players use (``en``, ``pt-BR``, ``zh-Hant``); also keeps file names safe."""
    return bool(_LANGUAGE.match(code)) and len(code) <= 35


def tracks_digest(tracks: list[TextTrack]) -> str:
    """Identifies a set of tracks, so a version records which ones it carries."""
    return hashlib.sha256(json.dumps([t.as_dict() for t in tracks], sort_keys=True).encode()).hexdigest()


# --- Reading -----------------------------------------------------------------------------------------


def _decode(data: bytes) -> str:
    if not data.strip():
        raise TextTrackInvalid("the file is empty")
    if len(data) > MAX_BYTES:
        raise TextTrackInvalid(f"the file is {len(data)} bytes; the limit is {MAX_BYTES}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise TextTrackInvalid(
            f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 and upload it again"
        ) from exc
    if "\x00" in text:
        raise TextTrackInvalid("the file is not UTF-8 text (it contains NUL characters)")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _seconds(groups: tuple[str | None, ...]) -> float:
    hours, minutes, seconds, millis = groups
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + int(seconds or 0) + int(millis or 0) / 1000


def _timing(line: str, where: str) -> tuple[float, float, str]:
    match = _TIMING.match(line)
    if not match:
        raise TextTrackInvalid(
            f"{where}: expected a timing line like 00:00:01.000 --> 00:00:03.000, found {line[:60]!r}"
        )
    start, end = _seconds(match.groups()[0:4]), _seconds(match.groups()[4:8])
    if end <= start:
        raise TextTrackInvalid(f"{where}: ends ({format_time(end)}) before it starts ({format_time(start)})")
    return start, end, match.group(9).strip()


def _blocks(text: str) -> list[tuple[int, list[str]]]:
    """Blank-line separated blocks with the line number (1-based) each starts at."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip():
            if not current:
                start = number
            current.append(line.rstrip())
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def parse_srt(text: str) -> list[Cue]:
    cues: list[Cue] = []
    for line_number, lines in _blocks(text):
        where = f"line {line_number}"
        timing_at = 1 if lines[0].strip().isdigit() else 0
        if timing_at >= len(lines):
            raise TextTrackInvalid(f"{where}: a cue number without a timing line")
        start, end, _ = _timing(lines[timing_at], where)
        payload = [_SRT_ONLY_TAGS.sub("", line) for line in lines[timing_at + 1 :]]
        cues.append(Cue(start=start, end=end, text=_payload("\n".join(payload).strip(), where)))
    return cues


def parse_vtt(text: str) -> list[Cue]:
    blocks = _blocks(text)
    header = blocks[0][1][0] if blocks else ""
    if not (header == "WEBVTT" or header.startswith(("WEBVTT ", "WEBVTT\t"))):
        raise TextTrackInvalid("line 1: a WebVTT file must start with 'WEBVTT'")
    cues: list[Cue] = []
    for line_number, lines in blocks[1:]:
        if lines[0].startswith(("NOTE", "STYLE", "REGION")) and "-->" not in lines[0]:
            continue  # comments and styling: players style captions themselves
        where = f"line {line_number}"
        timing_at = 0 if "-->" in lines[0] else 1
        if timing_at >= len(lines) or "-->" not in lines[timing_at]:
            raise TextTrackInvalid(f"{where}: expected a timing line like 00:00:01.000 --> 00:00:03.000")
        start, end, settings = _timing(lines[timing_at], where)
        identifier = lines[0].strip() if timing_at else ""
        cues.append(
            Cue(
                start=start,
                end=end,
                text=_payload("\n".join(lines[timing_at + 1 :]).strip(), where),
                identifier=identifier,
                settings=settings,
            )
        )
    return cues


def _payload(text: str, where: str) -> str:
    if not text:
        raise TextTrackInvalid(f"{where}: the cue has no text")
    if "-->" in text:
        raise TextTrackInvalid(f"{where}: '-->' inside a cue's text (a missing blank line between cues?)")
    return text


def _check_times(cues: list[Cue], duration: float | None) -> None:
    if not cues:
        raise TextTrackInvalid("the file has no cues")
    if duration is None:
        return
    for number, cue in enumerate(cues, start=1):
        if cue.end > duration + END_TOLERANCE_SECONDS:
            raise TextTrackInvalid(
                f"cue {number} ends at {format_time(cue.end)}, after the end of the video ({format_time(duration)})"
            )


# --- Writing -----------------------------------------------------------------------------------------


def format_time(seconds: float) -> str:
    millis = round(seconds * 1000)
    hours, rest = divmod(millis, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    return f"{hours:02d}:{minutes:02d}:{rest // 1000:02d}.{rest % 1000:03d}"


def write_vtt(cues: list[Cue]) -> str:
    out = ["WEBVTT", ""]
    for cue in sorted(cues, key=lambda c: (c.start, c.end)):
        if cue.identifier:
            out.append(cue.identifier)
        timing = f"{format_time(cue.start)} --> {format_time(cue.end)}"
        out.append(f"{timing} {cue.settings}" if cue.settings else timing)
        out.extend([cue.text, ""])
    return "\n".join(out)


def captions_to_vtt(data: bytes, *, duration: float | None) -> str:
    """An uploaded SRT or WebVTT file as canonical WebVTT; raises TextTrackInvalid with the reason.

    The format is recognised from the content (a WebVTT file starts with ``WEBVTT``), not the name.
    ``duration`` (seconds, None while the video is unknown) bounds the cue times.
    """
    text = _decode(data)
    stripped = text.lstrip()
    cues = parse_vtt(stripped) if stripped.startswith("WEBVTT") else parse_srt(stripped)
    _check_times(cues, duration)
    return write_vtt(cues)


def chapters_to_vtt(data: bytes, *, duration: float | None) -> str:
    """A WebVTT chapters file: one cue per chapter with its title; non-overlapping, in order."""
    text = _decode(data)
    if not text.lstrip().startswith("WEBVTT"):
        raise TextTrackInvalid("chapters must be a WebVTT file (starting with 'WEBVTT')")
    cues = parse_vtt(text.lstrip())
    _check_times(cues, duration)
    for number, (before, after) in enumerate(zip(cues, cues[1:], strict=False), start=2):
        if after.start < before.end:
            raise TextTrackInvalid(f"chapter {number} starts before chapter {number - 1} ends")
    for number, cue in enumerate(cues, start=1):
        if "\n" in cue.text:
            raise TextTrackInvalid(f"chapter {number}: the title must be one line")
    return write_vtt(cues)


def vtt_cues(text: str) -> list[Cue]:
    """Cues of a WebVTT file we wrote (or any valid one)."""
    return parse_vtt(text.replace("\r\n", "\n").lstrip("\ufeff"))


# --- Manifests ---------------------------------------------------------------------------------------


def hls_subtitles_playlist(track: TextTrack, *, duration: float) -> str:
    """A media playlist with the whole WebVTT file as one segment (RFC 8216 allows any length)."""
    return "\n".join(
        [
            "#EXTM3U",
            "#EXT-X-VERSION:3",
            f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}",
            "#EXT-X-MEDIA-SEQUENCE:0",
            "#EXT-X-PLAYLIST-TYPE:VOD",
            f"#EXTINF:{duration:.3f},",
            track.file_name,
            "#EXT-X-ENDLIST",
            "",
        ]
    )


def _hls_quoted(value: str) -> str:
    return value.replace('"', "'").replace("\n", " ")


_SUBTITLES_ATTR = re.compile(r',SUBTITLES="[^"]*"')


def hls_master_with_subtitles(master: str, tracks: list[TextTrack]) -> str:
    """The packager's master playlist with one SUBTITLES rendition per caption track, and every variant
    naming the group. Existing subtitle entries are dropped first, so a derived version starts clean."""
    captions = [track for track in tracks if track.kind == CAPTIONS]
    lines = [
        line
        for line in master.rstrip("\n").split("\n")
        if not (line.startswith("#EXT-X-MEDIA:") and "TYPE=SUBTITLES" in line)
    ]
    out: list[str] = []
    added = False
    for line in lines:
        if line.startswith("#EXT-X-STREAM-INF:"):
            if captions and not added:
                # DEFAULT=NO: captions start off in every player (Shaka shows none unless asked either);
                # the learner picks a language from the menu.
                for track in captions:
                    out.append(
                        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{HLS_GROUP}",NAME="{_hls_quoted(track.label)}",'
                        f'LANGUAGE="{track.language}",DEFAULT=NO,AUTOSELECT=YES,'
                        f'FORCED=NO,URI="{track.playlist_name}"'
                    )
                added = True
            line = _SUBTITLES_ATTR.sub("", line)
            if captions:
                line += f',SUBTITLES="{HLS_GROUP}"'
        out.append(line)
    return "\n".join(out) + "\n"


_TEXT_SET = re.compile(r'[ \t]*<AdaptationSet\b[^>]*contentType="text".*?</AdaptationSet>[ \t]*\n?', re.DOTALL)
_ADAPTATION_ID = re.compile(r'<AdaptationSet\b[^>]*\bid="(\d+)"')


def _xml_attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;").replace(">", "&gt;")


def dash_mpd_with_text(mpd: str, tracks: list[TextTrack]) -> str:
    """The packager's MPD with one text AdaptationSet (a side-loaded WebVTT file) per caption track.

    Edited as text, not re-serialised: the packager's namespaces, PSSH and attribute order stay byte
    for byte. Shaka Packager writes one Period for on-demand output; the sets go at its end.
    """
    mpd = _TEXT_SET.sub("", mpd)
    captions = [track for track in tracks if track.kind == CAPTIONS]
    if not captions:
        return mpd
    if mpd.count("</Period>") != 1:
        raise ValueError("expected an MPD with exactly one Period")
    next_id = max((int(value) for value in _ADAPTATION_ID.findall(mpd)), default=-1) + 1
    sets = []
    for offset, track in enumerate(captions):
        sets.append(
            f'    <AdaptationSet id="{next_id + offset}" contentType="text" mimeType="text/vtt" '
            f'lang="{track.language}">\n'
            f"      <Label>{_xml_attr(track.label)}</Label>\n"
            '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>\n'
            f'      <Representation id="text_{track.language.lower()}" bandwidth="256">\n'
            f"        <BaseURL>{track.file_name}</BaseURL>\n"
            "      </Representation>\n"
            "    </AdaptationSet>\n"
        )
    head, _, tail = mpd.partition("</Period>")
    return head.rstrip(" ") + "".join(sets) + "  </Period>" + tail
