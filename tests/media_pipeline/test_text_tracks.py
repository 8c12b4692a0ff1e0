"""Captions and chapters: SRT to WebVTT, validation with reasons, and the manifest entries (no Django)."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_pipeline.text_tracks import (
    CAPTIONS,
    CHAPTERS,
    TextTrack,
    TextTrackInvalid,
    captions_to_vtt,
    chapters_to_vtt,
    dash_mpd_with_text,
    hls_master_with_subtitles,
    hls_subtitles_playlist,
    language_valid,
    vtt_cues,
)
from playback.steering import Pathway, steer_hls_master
from tests.media_checks import attributes, hls_master_problems, validate_mpd

SRT = (
    "1\r\n00:00:01,000 --> 00:00:02,500\r\nHello, <i>world</i>\r\n\r\n"
    '2\r\n00:00:03,000 --> 00:00:04,250\r\n<font color="red">Two</font> lines\r\nhere {\\an8}\r\n'
)


def test_srt_becomes_canonical_webvtt() -> None:
    vtt = captions_to_vtt(("\ufeff" + SRT).encode(), duration=6.0)
    assert vtt == (
        "WEBVTT\n\n"
        "00:00:01.000 --> 00:00:02.500\nHello, <i>world</i>\n\n"
        "00:00:03.000 --> 00:00:04.250\nTwo lines\nhere\n"
    )
    assert [(c.start, c.end) for c in vtt_cues(vtt)] == [(1.0, 2.5), (3.0, 4.25)]


def test_webvtt_keeps_ids_and_settings_drops_notes_and_sorts() -> None:
    source = (
        "WEBVTT - lecture 3\n\nNOTE written by hand\n\n"
        "second\n01:02.000 --> 01:03.000 line:0 align:start\nLater\n\n"
        "00:00:00.500 --> 00:00:01.000\nFirst\n"
    )
    assert captions_to_vtt(source.encode(), duration=None) == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.000\nFirst\n\n"
        "second\n00:01:02.000 --> 00:01:03.000 line:0 align:start\nLater\n"
    )


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b" \n\r\n", "the file is empty"),
        ("1\n00:00:01,000 --> 00:00:02,000\nCaf\u00e9\n".encode("latin-1"), "the file is not UTF-8 text (byte 35)"),
        (b"1\n00:00:01 --> 00:00:02\nHi\n", "line 1: expected a timing line like 00:00:01.000 --> 00:00:03.000"),
        (b"1\n00:00:03,000 --> 00:00:02,000\nHi\n", "line 1: ends (00:00:02.000) before it starts (00:00:03.000)"),
        (b"1\n00:00:01,000 --> 00:00:02,000\n\n", "line 1: the cue has no text"),
        (b"7\n\n", "line 1: a cue number without a timing line"),
        (b"1\n00:00:01,000 --> 00:00:02,000\nHi\n2\n00:00:03,000 --> 00:00:04,000\nB\n", "line 1: '-->' inside"),
        (b"WEBVTT\n", "the file has no cues"),
        (b"WEBVTTX\n\n00:01.000 --> 00:02.000\nHi\n", "line 1: a WebVTT file must start with 'WEBVTT'"),
        (b"1\n00:00:05,000 --> 00:00:08,000\nToo late\n", "cue 1 ends at 00:00:08.000, after the end of the video"),
        (b"\x00\x01\x02 not text", "the file is not UTF-8 text (it contains NUL characters)"),
    ],
)
def test_bad_caption_files_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(TextTrackInvalid) as refused:
        captions_to_vtt(data, duration=6.0)
    assert str(refused.value).startswith(reason)


def test_cues_may_end_within_a_second_after_the_video() -> None:
    assert captions_to_vtt(b"1\n00:00:05,000 --> 00:00:07,000\nEnd\n", duration=6.0).endswith("End\n")


def test_chapters_must_be_webvtt_in_order_with_one_line_titles() -> None:
    good = b"WEBVTT\n\n00:00.000 --> 00:02.000\nIntro\n\n00:02.000 --> 00:06.000\nSnell's law\n"
    assert [c.text for c in vtt_cues(chapters_to_vtt(good, duration=6.0))] == ["Intro", "Snell's law"]
    for data, reason in [
        (b"1\n00:00:00,000 --> 00:00:02,000\nIntro\n", "chapters must be a WebVTT file"),
        (b"WEBVTT\n\n00:00.000 --> 00:03.000\nA\n\n00:02.000 --> 00:04.000\nB\n", "chapter 2 starts before"),
        (b"WEBVTT\n\n00:00.000 --> 00:03.000\nA\nB\n", "chapter 1: the title must be one line"),
    ]:
        with pytest.raises(TextTrackInvalid, match=reason):
            chapters_to_vtt(data, duration=6.0)


@pytest.mark.parametrize(("code", "valid"), [("en", True), ("pt-BR", True), ("zh-Hant", True), ("e", False),
                                             ("en_US", False), ("../x", False), ("en-", False)])  # fmt: skip
def test_language_codes(code: str, valid: bool) -> None:
    assert language_valid(code) is valid


EN = TextTrack(kind=CAPTIONS, language="en", label="English", vtt="WEBVTT\n")
FR = TextTrack(kind=CAPTIONS, language="fr", label='Fran\u00e7ais "CC"', vtt="WEBVTT\n")
CH = TextTrack(kind=CHAPTERS, language="en", label="Chapters", vtt="WEBVTT\n")

MASTER = """#EXTM3U
## Generated with https://github.com/shaka-project/shaka-packager version v3.8.0
#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=AUDIO,URI="audio.m3u8",GROUP-ID="audio",NAME="Audio",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2"

#EXT-X-STREAM-INF:BANDWIDTH=900000,AVERAGE-BANDWIDTH=800000,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,FRAME-RATE=25.000,AUDIO="audio",CLOSED-CAPTIONS=NONE
video_360p.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=300000,AVERAGE-BANDWIDTH=250000,CODECS="avc1.64000c,mp4a.40.2",RESOLUTION=256x144,FRAME-RATE=25.000,AUDIO="audio",CLOSED-CAPTIONS=NONE
video_144p.m3u8
"""


def test_hls_master_gets_a_subtitles_group_named_by_every_variant() -> None:
    master = hls_master_with_subtitles(MASTER, [EN, FR, CH])
    assert hls_master_problems(master) == []
    media = [attributes(line) for line in master.splitlines() if "TYPE=SUBTITLES" in line]
    assert media == [
        {"TYPE": "SUBTITLES", "GROUP-ID": "subs", "NAME": "English", "LANGUAGE": "en", "DEFAULT": "NO",
         "AUTOSELECT": "YES", "FORCED": "NO", "URI": "subs_en.m3u8"},
        {"TYPE": "SUBTITLES", "GROUP-ID": "subs", "NAME": "Fran\u00e7ais 'CC'", "LANGUAGE": "fr", "DEFAULT": "NO",
         "AUTOSELECT": "YES", "FORCED": "NO", "URI": "subs_fr.m3u8"},
    ]  # fmt: skip
    variants = [attributes(line) for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert [v["SUBTITLES"] for v in variants] == ["subs", "subs"]
    assert [v["AUDIO"] for v in variants] == ["audio", "audio"]
    # Rewriting a rewritten master (a derived version) replaces the tracks instead of adding to them.
    again = hls_master_with_subtitles(master, [FR])
    assert again.count("TYPE=SUBTITLES") == 1 and again.count('SUBTITLES="subs"') == 2
    assert hls_master_with_subtitles(master, []) == MASTER


def test_subtitles_media_playlist_is_one_segment_of_the_whole_lesson() -> None:
    assert hls_subtitles_playlist(FR, duration=6.02) == (
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:7\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXTINF:6.020,\nsubs_fr.vtt\n#EXT-X-ENDLIST\n"
    )


MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" profiles="urn:mpeg:dash:profile:isoff-live:2011"
 minBufferTime="PT2S" type="static" mediaPresentationDuration="PT6S">
  <Period id="0">
    <AdaptationSet id="0" contentType="audio" segmentAlignment="true">
      <Representation id="0" bandwidth="130000" codecs="mp4a.40.2" mimeType="audio/mp4" audioSamplingRate="48000">
        <SegmentTemplate timescale="48000" initialization="audio/init.mp4" media="audio/$Number$.m4s" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="96000" r="2"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
    <AdaptationSet id="1" contentType="video" width="640" height="360" frameRate="25/1" segmentAlignment="true">
      <Representation id="1" bandwidth="900000" codecs="avc1.64001e" mimeType="video/mp4" sar="1:1">
        <SegmentTemplate timescale="12800" initialization="v/init.mp4" media="v/$Number$.m4s" startNumber="1">
          <SegmentTimeline>
            <S t="0" d="25600" r="2"/>
          </SegmentTimeline>
        </SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""


def test_dash_mpd_gets_a_text_adaptation_set_per_language(tmp_path: Path) -> None:
    mpd = dash_mpd_with_text(MPD, [EN, CH, FR])
    path = tmp_path / "manifest.mpd"
    path.write_text(mpd)
    validate_mpd(path)
    assert mpd.count('contentType="text"') == 2
    assert (
        '    <AdaptationSet id="2" contentType="text" mimeType="text/vtt" lang="en">\n'
        "      <Label>English</Label>\n"
        '      <Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>\n'
        '      <Representation id="text_en" bandwidth="256">\n'
        "        <BaseURL>subs_en.vtt</BaseURL>\n"
        "      </Representation>\n"
        "    </AdaptationSet>\n"
    ) in mpd
    assert '<AdaptationSet id="3" contentType="text" mimeType="text/vtt" lang="fr">' in mpd
    assert "<Label>Fran\u00e7ais &quot;CC&quot;</Label>" in mpd
    # Idempotent over a derived version; no tracks gives back the packager's MPD byte for byte.
    assert dash_mpd_with_text(mpd, [EN, CH, FR]) == mpd
    assert dash_mpd_with_text(mpd, []) == MPD


def test_a_steered_master_repeats_the_subtitles_group_per_pathway() -> None:
    steered = steer_hls_master(
        hls_master_with_subtitles(MASTER, [EN]),
        pathways=[Pathway(name="eu", base="https://eu.example/t/"), Pathway(name="us", base="https://us.example/t/")],
        steering_uri="/steer/x/steering.json",
    )
    media = [attributes(line) for line in steered.splitlines() if "TYPE=SUBTITLES" in line]
    assert [(m["GROUP-ID"], m["URI"]) for m in media] == [
        ("subs-eu", "https://eu.example/t/subs_en.m3u8"),
        ("subs-us", "https://us.example/t/subs_en.m3u8"),
    ]
    variants = [attributes(line) for line in steered.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
    assert [(v["SUBTITLES"], v["PATHWAY-ID"]) for v in variants] == [
        ("subs-eu", "eu"), ("subs-eu", "eu"), ("subs-us", "us"), ("subs-us", "us")
    ]  # fmt: skip
