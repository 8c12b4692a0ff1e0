"""Content steering, pure: steered HLS masters and DASH MPDs, pathway priority, the steering answer."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import m3u8
import pytest

from playback.steering import (
    DASH_NS,
    Pathway,
    pathway_priority,
    steer_dash_mpd,
    steer_hls_master,
    steering_manifest,
)
from tests.media_checks import attributes, validate_mpd

# What Shaka Packager writes (comments and blank lines included).
MASTER = """#EXTM3U
## Generated with https://github.com/shaka-project/shaka-packager version v3.8.0

#EXT-X-INDEPENDENT-SEGMENTS

#EXT-X-MEDIA:TYPE=AUDIO,URI="audio.m3u8",GROUP-ID="audio",NAME="Audio",DEFAULT=NO,AUTOSELECT=YES,CHANNELS="2"

#EXT-X-STREAM-INF:BANDWIDTH=305805,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="audio",CLOSED-CAPTIONS=NONE
video_720p.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=205609,CODECS="avc1.64001e,mp4a.40.2",RESOLUTION=640x360,AUDIO="audio",CLOSED-CAPTIONS=NONE
video_360p.m3u8
"""
MPD = """<?xml version="1.0" encoding="UTF-8"?>
<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" \
xsi:schemaLocation="urn:mpeg:dash:schema:mpd:2011 DASH-MPD.xsd" profiles="urn:mpeg:dash:profile:isoff-live:2011" \
minBufferTime="PT2S" type="static" mediaPresentationDuration="PT6S">
  <Period id="0">
    <AdaptationSet id="0" contentType="video" segmentAlignment="true">
      <Representation id="0" bandwidth="173952" codecs="avc1.64001f" mimeType="video/mp4" width="1280" height="720">
        <SegmentTemplate timescale="15360" initialization="video_720p/init.mp4" media="video_720p/$Number$.m4s" \
startNumber="1"><SegmentTimeline><S t="0" d="30720" r="2"/></SegmentTimeline></SegmentTemplate>
      </Representation>
    </AdaptationSet>
  </Period>
</MPD>
"""
PATHWAYS = [
    Pathway("eu", "https://eu.cdn.example/s/T1/lessons/x/v1/"),
    Pathway("ap", "https://ap.cdn.example/s/T2/lessons/x/v1/"),
]
STEERING = "https://lessons.example/steer/T/lessons/x/v1/steering.json"


def test_the_steered_master_repeats_every_variant_and_rendition_per_pathway() -> None:
    text = steer_hls_master(MASTER, pathways=PATHWAYS, steering_uri=STEERING)
    lines = text.splitlines()
    assert lines[:3] == [
        "#EXTM3U",
        "#EXT-X-INDEPENDENT-SEGMENTS",
        f'#EXT-X-CONTENT-STEERING:SERVER-URI="{STEERING}",PATHWAY-ID="eu"',
    ]
    playlist = m3u8.loads(text)
    assert playlist.content_steering.uri == STEERING
    assert playlist.content_steering.pathway_id == "eu"
    variants = [(p.stream_info.pathway_id, p.stream_info.audio, p.uri) for p in playlist.playlists]
    assert variants == [
        ("eu", "audio-eu", "https://eu.cdn.example/s/T1/lessons/x/v1/video_720p.m3u8"),
        ("eu", "audio-eu", "https://eu.cdn.example/s/T1/lessons/x/v1/video_360p.m3u8"),
        ("ap", "audio-ap", "https://ap.cdn.example/s/T2/lessons/x/v1/video_720p.m3u8"),
        ("ap", "audio-ap", "https://ap.cdn.example/s/T2/lessons/x/v1/video_360p.m3u8"),
    ]
    renditions = [(m.group_id, m.uri) for m in playlist.media]
    assert renditions == [
        ("audio-eu", "https://eu.cdn.example/s/T1/lessons/x/v1/audio.m3u8"),
        ("audio-ap", "https://ap.cdn.example/s/T2/lessons/x/v1/audio.m3u8"),
    ]
    # Everything else of each variant is kept as the packager wrote it.
    first = attributes(lines[4])
    assert (first["BANDWIDTH"], first["CODECS"], first["RESOLUTION"]) == (
        "305805",
        "avc1.64001f,mp4a.40.2",
        "1280x720",
    )
    assert not any(line.startswith("##") for line in lines)


def test_one_pathway_still_gets_a_valid_steered_master() -> None:
    playlist = m3u8.loads(steer_hls_master(MASTER, pathways=PATHWAYS[:1], steering_uri=STEERING))
    assert [p.stream_info.pathway_id for p in playlist.playlists] == ["eu", "eu"]


@pytest.mark.parametrize("bad", ['x",URI="evil', "a\nb"])
def test_a_value_that_would_break_the_playlist_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        steer_hls_master(MASTER, pathways=[Pathway(bad, "https://x/")], steering_uri=STEERING)
    with pytest.raises(ValueError):
        steer_hls_master(MASTER, pathways=PATHWAYS, steering_uri=bad)


def test_the_steered_mpd_has_a_base_url_per_service_location_and_content_steering(tmp_path: Path) -> None:
    text = steer_dash_mpd(MPD, pathways=PATHWAYS, steering_uri=STEERING)
    root = ET.fromstring(text)
    children = [child.tag.removeprefix(f"{{{DASH_NS}}}") for child in root]
    assert children == ["BaseURL", "BaseURL", "ContentSteering", "Period"]
    bases = [(b.get("serviceLocation"), b.text) for b in root.findall(f"{{{DASH_NS}}}BaseURL")]
    assert bases == [(p.name, p.base) for p in PATHWAYS]
    steering = root.find(f"{{{DASH_NS}}}ContentSteering")
    assert steering is not None
    assert (steering.get("defaultServiceLocation"), steering.get("queryBeforeStart"), steering.text) == (
        "eu", "false", STEERING,
    )  # fmt: skip
    assert text.count('xmlns="urn:mpeg:dash:schema:mpd:2011"') == 1 and "ns0:" not in text
    # The shared MPD schema predates ContentSteering (ISO/IEC 23009-1 5th edition): everything else
    # of the steered MPD, BaseURL@serviceLocation included, is checked against it.
    root.remove(steering)
    without = tmp_path / "steered.mpd"
    without.write_text(ET.tostring(root, encoding="unicode"))
    validate_mpd(without)


def test_pathway_priority_nearest_first_unhealthy_last_only_complete_ones() -> None:
    assert pathway_priority(complete=["eu", "us", "ap"]) == ["eu", "us", "ap"]
    assert pathway_priority(complete=["eu", "us", "ap"], nearest=["ap"]) == ["ap", "eu", "us"]
    assert pathway_priority(complete=["eu", "us", "ap"], nearest=["ap"], demoted=["ap"]) == ["eu", "us", "ap"]
    assert pathway_priority(complete=["eu", "ap"], nearest=["us"], demoted=["eu"]) == ["ap", "eu"]


def test_the_steering_manifest_shape() -> None:
    assert steering_manifest(priority=["ap", "eu"], reload_uri=STEERING, ttl=60) == {
        "VERSION": 1, "TTL": 60, "RELOAD-URI": STEERING, "PATHWAY-PRIORITY": ["ap", "eu"],
    }  # fmt: skip
