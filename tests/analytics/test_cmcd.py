from __future__ import annotations

import pytest
from django.test import Client

from analytics.cmcd import CmcdError, cmcd_from_url, parse_cmcd


def test_parse_the_examples_of_cta_5004() -> None:
    payload = 'br=3200,bs,d=4004,mtp=25400,ot=v,rtp=15000,sid="6e2fb550-c457-11e9-bb97-0800200c9a66",tb=6000'
    assert parse_cmcd(payload) == {
        "br": 3200, "bs": True, "d": 4004, "mtp": 25400, "ot": "v", "rtp": 15000,
        "sid": "6e2fb550-c457-11e9-bb97-0800200c9a66", "tb": 6000,
    }  # fmt: skip


def test_strings_may_hold_commas_and_rates_are_decimal() -> None:
    assert parse_cmcd('cid="a,b",pr=1.25,su,nor="../300kbps/seg36.mp4"') == {
        "cid": "a,b", "pr": 1.25, "su": True, "nor": "../300kbps/seg36.mp4",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ("br=fast", "br must be a number"),
        ("sid=abc", "sid must be a quoted string"),
        ('cid="open', "unterminated string"),
    ],
)
def test_malformed_payloads_are_refused(payload: str, reason: str) -> None:
    with pytest.raises(CmcdError, match=reason):
        parse_cmcd(payload)


def test_from_a_segment_url_as_hls_js_sends_it() -> None:
    url = (
        "http://127.0.0.1:8000/stream/1.abc/lessons/x/v1/video_360p/3.m4s"
        "?CMCD=bl%3D12300%2Cbr%3D800%2Ccid%3D%22lesson-1%22%2Cd%3D2000%2Cot%3Dv%2Csid%3D%22view-9%22%2Csu"
    )
    assert cmcd_from_url(url) == {
        "bl": 12300, "br": 800, "cid": "lesson-1", "d": 2000, "ot": "v", "sid": "view-9", "su": True,
    }  # fmt: skip
    assert cmcd_from_url("http://x/stream/t/lessons/x/v1/master.m3u8") is None


def test_the_origin_counts_cmcd_and_ignores_malformed_data(client: Client) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    before = (value("qoe_cmcd_requests_total", object="video"), value("qoe_cmcd_buffer_starvation_total"))
    buffer_before = value("qoe_cmcd_buffer_length_seconds_count")
    # The token is forged, so the origin refuses the object, but the player's report still counts.
    response = client.get("/stream/1.forged/lessons/x/v1/video_360p/1.m4s", {"CMCD": 'bl=4300,bs,ot=v,sid="s"'})
    assert response.status_code == 403
    assert value("qoe_cmcd_requests_total", object="video") - before[0] == 1
    assert value("qoe_cmcd_buffer_starvation_total") - before[1] == 1
    assert value("qoe_cmcd_buffer_length_seconds_count") - buffer_before == 1
    response = client.get("/stream/1.forged/lessons/x/v1/video_360p/1.m4s", {"CMCD": 'sid="unterminated'})
    assert response.status_code == 403
    assert value("qoe_cmcd_requests_total", object="video") - before[0] == 1
