"""Content protection at playback (docs/adr/0008): license tokens, the W3C ClearKey license server and
the HLS key endpoint (this site), and DRM providers that hand a player what it needs for a license:
``providers/clearkey.py`` (this site) and ``providers/axinom.py`` (Axinom DRM: Widevine, PlayReady,
FairPlay)."""
