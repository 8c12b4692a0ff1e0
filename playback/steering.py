"""Content steering (pure): steered manifests and the steering server's answer.

With more than one pathway (storage region, each behind its own CDN or origin path), a playback
session gets manifests that list every pathway, and players ask the steering server which to use:

- HLS (HLS Content Steering 1.2, RFC 8216bis 4.4.6.6): ``#EXT-X-CONTENT-STEERING:SERVER-URI=...,
  PATHWAY-ID=...`` and each variant repeated per pathway with ``PATHWAY-ID``, rendition groups
  suffixed per pathway, URIs absolute under the pathway's signed base.
- DASH (DASH-IF Content Steering, ETSI TS 103 998): ``<ContentSteering defaultServiceLocation=...>``
  and one ``<BaseURL serviceLocation=...>`` per pathway at MPD level.
- The steering manifest (both): ``{"VERSION": 1, "TTL": s, "RELOAD-URI": ..., "PATHWAY-PRIORITY": [...]}``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass

DASH_NS = "urn:mpeg:dash:schema:mpd:2011"
# Namespaces Shaka Packager writes; registered so serialising keeps their usual prefixes.
_NAMESPACES = {
    "": DASH_NS,
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xlink": "http://www.w3.org/1999/xlink",
    "cenc": "urn:mpeg:cenc:2013",
    "mspr": "urn:microsoft:playready",
    "scte214": "urn:scte:dash:scte214-extensions",
}
_ATTR_URI = re.compile(r'URI="([^"]*)"')
_GROUP_ATTRS = ("GROUP-ID", "AUDIO", "SUBTITLES", "VIDEO")


@dataclass(frozen=True)
class Pathway:
    name: str
    base: str  # a URL base ending in "/", under which every object of the version is fetchable


def _quote_ok(value: str) -> str:
    if '"' in value or "\n" in value:
        raise ValueError(f"cannot put {value!r} in a quoted HLS attribute")
    return value


def _suffix_groups(line: str, pathway: str) -> str:
    for attr in _GROUP_ATTRS:
        line = re.sub(rf'(?<![A-Z-]){attr}="([^"]*)"', rf'{attr}="\1-{_escaped(pathway)}"', line)
    return line


def _escaped(text: str) -> str:
    """``text`` as a literal in a re.sub replacement."""
    return text.replace("\\", "\\\\")


def _rebased(line: str, base: str) -> str:
    """A tag line with its URI attribute prefixed by ``base``."""
    return _ATTR_URI.sub(lambda match: f'URI="{base}{match.group(1)}"', line)


def steer_hls_master(master: str, *, pathways: list[Pathway], steering_uri: str) -> str:
    """The stored master playlist, with every variant and rendition repeated once per pathway."""
    if not pathways:
        raise ValueError("no pathway to steer between")
    lines = [line.rstrip("\r") for line in master.splitlines()]
    header: list[str] = []
    body: list[str] = []
    for line in lines:
        if line.startswith(("#EXTM3U", "#EXT-X-VERSION", "#EXT-X-INDEPENDENT-SEGMENTS", "#EXT-X-START")):
            header.append(line)
        elif line.startswith("#EXT") or (line and not line.startswith("#")):  # tags and URIs, no comments
            body.append(line)
    out = header + [
        f'#EXT-X-CONTENT-STEERING:SERVER-URI="{_quote_ok(steering_uri)}",PATHWAY-ID="{_quote_ok(pathways[0].name)}"'
    ]
    for pathway in pathways:
        _quote_ok(pathway.name)
        expect_uri = False
        for line in body:
            if expect_uri and not line.startswith("#"):
                out.append(pathway.base + line)
                expect_uri = False
            elif line.startswith("#EXT-X-MEDIA:"):
                out.append(_suffix_groups(_rebased(line, pathway.base), pathway.name))
            elif line.startswith("#EXT-X-STREAM-INF:"):
                out.append(_suffix_groups(line, pathway.name) + f',PATHWAY-ID="{pathway.name}"')
                expect_uri = True
            elif line.startswith("#EXT-X-I-FRAME-STREAM-INF:"):
                out.append(_suffix_groups(_rebased(line, pathway.base), pathway.name) + f',PATHWAY-ID="{pathway.name}"')
            elif line.startswith("#EXT-X-SESSION") and pathway is pathways[0]:
                out.append(line)
    return "\n".join(out) + "\n"


def steer_dash_mpd(mpd: str, *, pathways: list[Pathway], steering_uri: str) -> str:
    """The stored MPD with a ContentSteering element and one BaseURL per pathway (service location)."""
    if not pathways:
        raise ValueError("no pathway to steer between")
    for prefix, uri in _NAMESPACES.items():
        ET.register_namespace(prefix, uri)
    root = ET.fromstring(mpd)
    if root.tag != f"{{{DASH_NS}}}MPD":
        raise ValueError("not a DASH MPD")
    for existing in root.findall(f"{{{DASH_NS}}}BaseURL") + root.findall(f"{{{DASH_NS}}}ContentSteering"):
        root.remove(existing)
    # Schema order: ProgramInformation*, BaseURL*, Location*, ... Period+; BaseURLs go after any
    # ProgramInformation, ContentSteering just before the first Period (ISO/IEC 23009-1:2022).
    position = sum(1 for child in root if child.tag == f"{{{DASH_NS}}}ProgramInformation")
    for offset, pathway in enumerate(pathways):
        base = ET.Element(f"{{{DASH_NS}}}BaseURL", {"serviceLocation": pathway.name})
        base.text = pathway.base
        root.insert(position + offset, base)
    steering = ET.Element(
        f"{{{DASH_NS}}}ContentSteering", {"defaultServiceLocation": pathways[0].name, "queryBeforeStart": "false"}
    )
    steering.text = steering_uri
    first_period = next(i for i, child in enumerate(root) if child.tag == f"{{{DASH_NS}}}Period")
    root.insert(first_period, steering)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def pathway_priority(*, complete: Iterable[str], nearest: Iterable[str] = (), demoted: Iterable[str] = ()) -> list[str]:
    """Complete pathways only: the viewer's nearest first, unhealthy ones last (still a fallback)."""
    near, bad = set(nearest), set(demoted)
    ordered = list(complete)
    return sorted(ordered, key=lambda name: (name in bad, name not in near, ordered.index(name)))


def steering_manifest(*, priority: list[str], reload_uri: str, ttl: int) -> dict[str, object]:
    return {"VERSION": 1, "TTL": ttl, "RELOAD-URI": reload_uri, "PATHWAY-PRIORITY": priority}
