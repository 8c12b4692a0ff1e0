// Lesson player: asks the playback API for signed URLs, then plays HLS with hls.js or DASH with
// Shaka Player. State is exposed on window.lessonPlayer for the page and for browser tests.
(function () {
  "use strict";
  const video = document.getElementById("lesson-video");
  if (!video) return;
  const message = document.getElementById("player-message");
  const speed = document.getElementById("player-speed");
  // ?engine=hls|shaka in the page URL wins over the page's default (data-engine); hls.js otherwise.
  const requested = new URLSearchParams(window.location.search).get("engine") || video.dataset.engine;
  const engine = requested === "shaka" ? "shaka" : "hls";
  const state = { engine: engine, state: "starting", fatalErrors: [], errors: [], instance: null, session: null };
  window.lessonPlayer = state;

  // --- Quality of experience: one view per play attempt, batched beacons (see analytics/beacons.py).
  // The view is the server's: the first playback session's view_id, with the view_token every beacon
  // must carry (docs/adr/0020). Events wait in `pending` until it arrives; a renewed session keeps the
  // view (its token outlives any lecture). Without a session (refused, failed) nothing is sent.
  let viewId = null, viewToken = null, playRequested = false;
  const origin = performance.now();
  const pending = [];
  let started = false, stalled = false, seeking = false, ended = false;
  function report(type, extra) {
    if (ended) return;
    const event = Object.assign({ type: type, t: Math.round(performance.now() - origin) }, extra || {});
    if (type === "rendition") state.rendition = extra;
    pending.push(event);
    if (type === "end" || (type === "error" && extra && extra.fatal)) { ended = true; flush(true); }
    else if (pending.length >= 150) flush(false);
  }
  function deviceClass() {
    const ua = navigator.userAgent;
    if (/iPad|Tablet/i.test(ua)) return "tablet";
    if (/Mobi|Android|iPhone/i.test(ua)) return "mobile";
    if (/TV|SMART-TV|CrKey/i.test(ua)) return "tv";
    return "desktop";
  }
  function browserName() {
    const ua = navigator.userAgent;
    if (/Edg\//.test(ua)) return "Edge";
    if (/Chrome\//.test(ua)) return "Chrome";
    if (/Firefox\//.test(ua)) return "Firefox";
    if (/Safari\//.test(ua)) return "Safari";
    return "other";
  }
  function flush(unloading) {
    if (!pending.length || !video.dataset.qoeUrl || !viewToken) return;
    const body = JSON.stringify({
      view_id: viewId, view_token: viewToken, lesson: video.dataset.lesson, pathway: state.pathway || "origin",
      browser: browserName(), device: deviceClass(), events: pending.splice(0, pending.length),
    });
    state.beaconsSent = (state.beaconsSent || 0) + 1;
    if (unloading && navigator.sendBeacon) {
      navigator.sendBeacon(video.dataset.qoeUrl, new Blob([body], { type: "text/plain" }));
    } else {
      fetch(video.dataset.qoeUrl, { method: "POST", body: body, keepalive: true, headers: { "Content-Type": "text/plain" } })
        .catch(function () { /* analytics must never disturb playback */ });
    }
  }
  function heartbeat() {
    // Sent while playing only, with the current rendition, so time can be split by rendition.
    if (!started || ended || video.paused) return;
    const quality = video.getVideoPlaybackQuality ? video.getVideoPlaybackQuality() : null;
    let ahead = 0;
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= video.currentTime && video.currentTime <= video.buffered.end(i)) {
        ahead = video.buffered.end(i) - video.currentTime;
      }
    }
    const extra = { position: video.currentTime, buffer: Math.min(3600, ahead) };
    if (quality) extra.dropped = quality.droppedVideoFrames;
    const measured = state.measuredBandwidth ? state.measuredBandwidth() : 0;
    if (measured > 0) extra.throughput_kbps = Math.min(1000000, Math.round(measured / 1000));
    report("heartbeat", Object.assign(extra, state.rendition || {}));
  }
  function adoptView(session) {
    if (viewToken || !session.view_id || !session.view_token) return;
    viewId = state.viewId = session.view_id;
    viewToken = session.view_token;
  }
  // Every flush carries a heartbeat, so the time since the last event is accounted for.
  state.flush = function () { heartbeat(); flush(false); };
  video.addEventListener("playing", function () {
    if (!started) {
      started = true;
      report("first_frame");
      if (state.reportRendition) state.reportRendition();
    }
    else if (stalled) { stalled = false; report("rebuffer_end"); }
  });
  video.addEventListener("waiting", function () {
    if (started && !seeking && !stalled && !video.paused) { stalled = true; report("rebuffer_start"); }
  });
  video.addEventListener("pause", function () { if (started && !video.ended) report("pause"); });
  video.addEventListener("play", function () { if (started) report("play"); });
  video.addEventListener("seeking", function () { if (started) { seeking = true; report("seeking"); } });
  video.addEventListener("seeked", function () { if (started) { seeking = false; report("seeked"); } });
  video.addEventListener("ended", function () { report("end"); });
  setInterval(state.flush, 10000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") { heartbeat(); flush(true); }
  });
  window.addEventListener("pagehide", function () { report("end"); });

  // --- Watch progress: the ranges actually played (video.played: seeking ahead leaves a gap), sent
  // every 15 s while playing, when playback ends or pauses, and when the page goes away. The server
  // counts distinct seconds; completion of the lesson flows on to an LMS gradebook (LTI AGS).
  // Each report carries the view token of the session this viewing started with: the server credits
  // seconds no faster than the fastest speed of the menu since that token was issued, so a renewed
  // session's token (issued later) would only hold back credit that is due. Once the first token has
  // expired (a tab left open for a day), the server refuses it and the latest session's is used.
  state.progressSent = 0;
  let lastProgress = "";
  let progressToken = "";
  function sendProgress(unloading) {
    if (!video.dataset.progressUrl || !progressToken || !video.played || !video.played.length) return;
    const ranges = [];
    for (let i = 0; i < video.played.length && i < 500; i++) {
      ranges.push([Math.round(video.played.start(i) * 100) / 100, Math.round(video.played.end(i) * 100) / 100]);
    }
    const body = JSON.stringify({ ranges: ranges, view_token: progressToken });
    if (body === lastProgress) return;
    lastProgress = body;
    state.progressSent += 1;
    fetch(video.dataset.progressUrl, {
      method: "POST", body: body, keepalive: unloading, credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": video.dataset.csrf },
    }).then(function (response) {
      const latest = state.session && state.session.view_token;
      if (response.status === 403 && latest && latest !== progressToken) { progressToken = latest; lastProgress = ""; }
      return response.ok ? response.json() : null;
    }).then(function (answer) { if (answer) state.progress = answer; })
      .catch(function () { lastProgress = ""; /* try again next time */ });
  }
  state.sendProgress = sendProgress;
  setInterval(function () { if (!video.paused) sendProgress(false); }, 15000);
  video.addEventListener("pause", function () { sendProgress(false); });
  video.addEventListener("ended", function () { sendProgress(false); });
  window.addEventListener("pagehide", function () { sendProgress(true); });
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") sendProgress(true);
  });

  function say(text, link) {
    message.textContent = text;
    if (link) {
      const anchor = document.createElement("a");
      anchor.href = link.href;
      anchor.textContent = link.text;
      message.append(" ", anchor);
    }
  }
  function fatal(text) {
    report("error", { fatal: true, code: String(text).slice(0, 40) });
    state.fatalErrors.push(text);
    state.state = "error";
    say("Playback failed: " + text);
  }

  if (speed) {
    speed.addEventListener("change", function () {
      // defaultPlaybackRate too: a media element reload would otherwise fall back to 1x.
      video.defaultPlaybackRate = video.playbackRate = Number(speed.value);
    });
  }
  // Engine switch: labelled buttons that reload the page with ?engine=..., so each engine starts clean.
  document.querySelectorAll("[data-engine-choice]").forEach(function (button) {
    const choice = button.dataset.engineChoice;
    button.setAttribute("aria-pressed", String(choice === engine));
    button.addEventListener("click", function () {
      if (choice === engine) return;
      const url = new URL(window.location.href);
      url.searchParams.set("engine", choice);
      window.location.assign(url.href);
    });
  });
  video.addEventListener("playing", function () { state.state = "playing"; say(""); });

  async function requestSession() {
    const response = await fetch(video.dataset.playbackUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": video.dataset.csrf, "Accept": "application/json" },
    });
    let body = {};
    try { body = await response.json(); } catch (e) { body = {}; }
    return { status: response.status, body: body };
  }

  // --- Long lectures outlive a playback token: renew the session before it expires and point
  // every later request at the new token (playlists are relative, so only the bases change). With
  // content steering a session has one base per pathway (storage region) besides the manifest's.
  const absolute = function (url) { return new URL(url, window.location.href).href; };
  function baseOf(url) { return url.slice(0, url.lastIndexOf("/") + 1); }
  function basesOf(session) {
    const bases = { manifest: baseOf(absolute(engine === "shaka" ? session.dash : session.hls)) };
    (session.regions || []).forEach(function (region) { bases["region:" + region.name] = baseOf(absolute(region.hls)); });
    return bases;
  }
  const sessions = [];
  function rewrite(url) {
    const latest = sessions[sessions.length - 1];
    for (let i = 0; i < sessions.length - 1; i++) {
      for (const name in sessions[i]) {
        if (latest[name] && url.startsWith(sessions[i][name])) return latest[name] + url.slice(sessions[i][name].length);
      }
    }
    return url;
  }
  // The pathway a media request went to, for QoE beacons (and so steering can demote a bad one).
  function pathwayOf(url) {
    for (let i = sessions.length - 1; i >= 0; i--) {
      for (const name in sessions[i]) {
        if (name.startsWith("region:") && url.startsWith(sessions[i][name])) return name.slice(7);
      }
    }
    return state.pathway;
  }
  state.renewals = 0;
  function scheduleRenewal(session) {
    const ttl = (Date.parse(session.expires_at) - Date.now()) / 1000;
    const margin = Math.min(60, ttl / 3);
    setTimeout(renew, Math.max(1, ttl - margin) * 1000);
  }
  async function renew() {
    if (ended) return;
    const result = await requestSession().catch(function () { return { status: 0 }; });
    if (result.status !== 200) { setTimeout(renew, 5000); return; }
    sessions.push(basesOf(result.body));
    state.session = result.body;
    state.renewals += 1;
    scheduleRenewal(result.body);
  }

  // --- Content protection (docs/adr/0008): an encrypted lesson's session carries license servers per
  // EME key system and headers (the license token) for license and key requests; never in a URL.
  // The latest session's credentials are used, so a renewed session renews them too.
  function drmHeaders() { return (state.session && state.session.drm && state.session.drm.headers) || {}; }
  function setHeaders(xhr) {
    const headers = drmHeaders();
    for (const name in headers) xhr.setRequestHeader(name, headers[name]);
  }
  function b64url(bytes) {
    let text = "";
    for (let i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function hex(bytes) { return Array.from(bytes, function (b) { return b.toString(16).padStart(2, "0"); }).join(""); }
  function hlsDrmConfig(drm) {
    const systems = {};
    for (const keySystem in drm.servers) systems[keySystem] = { licenseUrl: absolute(drm.servers[keySystem]) };
    return {
      emeEnabled: true,
      drmSystems: systems,
      // ClearKey from this site: hls.js fetches the raw key from the HLS key endpoint (the EXT-X-KEY URI
      // names it too) and hands the CDM the W3C ClearKey license built from it.
      licenseXhrSetup: function (xhr, url, keyContext, challenge) {
        const keyId = keyContext.decryptdata && keyContext.decryptdata.keyId;
        if (keyContext.keySystem === "org.w3.clearkey" && drm.hls_key_url && keyId) {
          xhr.open("GET", absolute(drm.hls_key_url + hex(keyId)), true);
        } else {
          xhr.open("POST", url, true);
        }
        setHeaders(xhr);
        state.licenseRequests = (state.licenseRequests || 0) + 1;
        return challenge;
      },
      licenseResponseCallback: function (xhr, url, keyContext) {
        const keyId = keyContext.decryptdata && keyContext.decryptdata.keyId;
        if (keyContext.keySystem !== "org.w3.clearkey" || !drm.hls_key_url || !keyId) return xhr.response;
        const key = new Uint8Array(xhr.response);
        const license = { keys: [{ kty: "oct", k: b64url(key), kid: b64url(keyId) }], type: "temporary" };
        return new TextEncoder().encode(JSON.stringify(license)).buffer;
      },
    };
  }

  // --- Fast start on slow networks (analytics/throughput.py). Both engines start from the session's
  // bandwidth estimate (this learner's recent sessions, else a conservative 1 Mbit/s), not from the
  // manifest's first variant (hls.js's default, which started a 1.2 Mbit/s learner on 720p), pick
  // their first rung from it, never above the player's size, and climb as they measure. Once a few
  // segments are measured, heartbeats report the engine's estimate for the learner's next sessions.
  const MEASURED_AFTER_SEGMENTS = 3;
  let mediaSegments = 0;
  function startBandwidth() {
    const estimate = state.session && state.session.start_estimate;
    return estimate && estimate.kbps > 0 ? estimate.kbps * 1000 : 1000000;
  }

  function playHls(url) {
    if (window.Hls && window.Hls.isSupported()) {
      const drm = state.session && state.session.drm;
      const hls = new window.Hls(Object.assign({
        enableWorker: true,
        startLevel: -1, // chosen from the estimate below...
        abrEwmaDefaultEstimate: startBandwidth(),
        testBandwidth: false, // ...which is already known: no throwaway probe segment
        capLevelToPlayerSize: true,
        // From the beginning, also while a provisional stream is still growing (an EVENT playlist, which
        // hls.js would otherwise join near its live edge; the playlist says EXT-X-START too).
        startPosition: 0,
        cmcd: { sessionId: viewId, contentId: video.dataset.lesson },
        xhrSetup: function (xhr, requestUrl) {
          const fresh = rewrite(requestUrl);
          if (fresh !== requestUrl) xhr.open("GET", fresh, true);
          // Cookie-signed CDNs (CloudFront, Akamai): the session's cookies must go with every request.
          if (state.session && state.session.credentials) xhr.withCredentials = true;
        },
      }, drm ? hlsDrmConfig(drm) : {}));
      state.instance = hls;
      hls.on(window.Hls.Events.ERROR, function (_event, data) {
        const text = data.type + ": " + data.details;
        if (data.fatal) fatal(text); else { state.errors.push(text); report("error", { fatal: false, code: String(data.details).slice(0, 40) }); }
      });
      state.reportRendition = function () {
        const level = hls.levels[hls.currentLevel];
        if (level) report("rendition", { bitrate_kbps: Math.round(level.bitrate / 1000), height: level.height || 0 });
      };
      hls.on(window.Hls.Events.LEVEL_SWITCHED, function () { if (started) state.reportRendition(); });
      hls.on(window.Hls.Events.FRAG_LOADED, function (_event, data) {
        state.pathway = pathwayOf(data.frag.url);
        if (data.frag.type === "main") mediaSegments += 1;
      });
      state.measuredBandwidth = function () {
        return mediaSegments >= MEASURED_AFTER_SEGMENTS ? hls.bandwidthEstimate : 0;
      };
      if (window.lessonPlayerExtras) window.lessonPlayerExtras.hlsCaptions(hls, window.Hls);
      playOnceBuffered(hls);
      hls.loadSource(url);
      hls.attachMedia(video);
      return;
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url; // Safari plays HLS natively.
    } else {
      fatal("this browser cannot play HLS");
      return;
    }
    video.play().catch(function () { /* autoplay may be blocked; the controls remain */ });
  }

  // A growing stream (a provisional version still being written: an EVENT playlist, no ENDLIST) begins
  // with a 1-second segment, so that it is published sooner. Playing on that one second stalls whenever
  // the next segment takes longer to arrive (a slow link, a busy machine), so hls.js starts it only once
  // STARTUP_BUFFER_SECONDS are buffered, as Shaka Player does by itself (its rebufferingGoal, 2 s).
  // A finished stream plays as soon as it can, as before.
  const STARTUP_BUFFER_SECONDS = 2;

  function bufferedAhead() {
    for (let i = 0; i < video.buffered.length; i++) {
      if (video.buffered.start(i) <= video.currentTime + 0.5 && video.currentTime < video.buffered.end(i)) {
        return video.buffered.end(i) - video.currentTime;
      }
    }
    return 0;
  }

  function playOnceBuffered(hls) {
    const Events = window.Hls.Events;
    let live = null; // unknown until the first media playlist
    function play() {
      hls.off(Events.FRAG_BUFFERED, check);
      hls.off(Events.LEVEL_LOADED, levelLoaded);
      video.play().catch(function () { /* autoplay may be blocked; the controls remain */ });
    }
    function check() {
      if (live === false || bufferedAhead() >= STARTUP_BUFFER_SECONDS) play();
    }
    function levelLoaded(_event, data) {
      live = Boolean(data.details && data.details.live); // a growing playlist that has just closed plays too
      check();
    }
    hls.on(Events.LEVEL_LOADED, levelLoaded);
    hls.on(Events.FRAG_BUFFERED, check);
  }

  async function playShaka(url) {
    window.shaka.polyfill.installAll();
    if (!window.shaka.Player.isBrowserSupported()) { fatal("this browser cannot play DASH"); return; }
    const player = new window.shaka.Player();
    state.instance = player;
    player.configure({
      cmcd: { enabled: true, sessionId: viewId, contentId: video.dataset.lesson },
      // The session's estimate rather than the browser's Network Information guess, as with hls.js.
      abr: { defaultBandwidthEstimate: startBandwidth(), useNetworkInformation: false, restrictToElementSize: true },
    });
    const drm = state.session && state.session.drm;
    if (drm) {
      const servers = {};
      for (const keySystem in drm.servers) servers[keySystem] = absolute(drm.servers[keySystem]);
      player.configure({ drm: { servers: servers } });
    }
    await player.attach(video);
    player.getNetworkingEngine().registerRequestFilter(function (type, request) {
      if (type === window.shaka.net.NetworkingEngine.RequestType.LICENSE) {
        Object.assign(request.headers, drmHeaders());
        state.licenseRequests = (state.licenseRequests || 0) + 1;
        return;
      }
      request.uris = request.uris.map(rewrite);
      if (state.session && state.session.credentials) request.allowCrossSiteCredentials = true;
    });
    player.getNetworkingEngine().registerResponseFilter(function (type, response) {
      if (type === window.shaka.net.NetworkingEngine.RequestType.SEGMENT) {
        state.pathway = pathwayOf(response.uri);
        mediaSegments += 1;
      }
    });
    state.measuredBandwidth = function () {
      return mediaSegments >= MEASURED_AFTER_SEGMENTS ? player.getStats().estimatedBandwidth : 0;
    };
    function reportVariant() {
      const active = player.getVariantTracks().find(function (track) { return track.active; });
      if (active) report("rendition", { bitrate_kbps: Math.round(active.bandwidth / 1000), height: active.height || 0 });
    }
    state.reportRendition = reportVariant;
    player.addEventListener("adaptation", reportVariant);
    player.addEventListener("variantchanged", reportVariant);
    if (window.lessonPlayerExtras) window.lessonPlayerExtras.shakaCaptions(player);
    player.addEventListener("error", function (event) {
      const error = event.detail;
      const text = "shaka " + error.code;
      if (error.severity === window.shaka.util.Error.Severity.CRITICAL) fatal(text);
      else { state.errors.push(text); report("error", { fatal: false, code: text }); }
    });
    try {
      // Start time 0: a growing provisional stream's MPD is dynamic, and Shaka joins a dynamic
      // presentation at its live edge unless told where to start.
      await player.load(url, 0);
    } catch (error) {
      fatal("shaka " + (error && error.code));
      return;
    }
    video.play().catch(function () { /* autoplay may be blocked; the controls remain */ });
  }

  async function start() {
    // Startup time counts from the first request, including our own API call (and any wait while processing).
    if (!playRequested) { playRequested = true; report("play_request"); }
    say("Loading…");
    const result = await requestSession();
    if (result.status === 409) {
      state.state = "processing";
      say("This video is still being processed. It will start here when it is ready.");
      setTimeout(start, 5000);
      return;
    }
    if (result.status === 403 || result.status === 401) {
      state.state = "denied";
      // The playback API's reason is written for people ("enrol in the course to watch this lesson").
      const detail = typeof result.body.detail === "string" ? result.body.detail : "";
      const text = detail ? detail.charAt(0).toUpperCase() + detail.slice(1) + "." : "You cannot watch this lesson.";
      say(text, video.dataset.courseUrl ? { href: video.dataset.courseUrl, text: "Go to the course page" } : null);
      return;
    }
    if (result.status !== 200) {
      fatal("the server answered " + result.status);
      return;
    }
    state.session = result.body;
    if (!progressToken) progressToken = result.body.view_token || "";
    adoptView(result.body);
    if (result.body.poster) video.poster = result.body.poster;
    state.state = "loading";
    // Absolute URLs: Shaka's CMCD rewriting turns a root-relative URL into "http://stream/...".
    const manifest = absolute(engine === "shaka" ? result.body.dash : result.body.hls);
    sessions.push(basesOf(result.body));
    scheduleRenewal(result.body);
    startExtras(result.body);
    if (engine === "shaka") await playShaka(manifest); else playHls(manifest);
  }

  // --- Storyboard previews and chapters (static/js/player-extras.js); a failure never stops playback.
  function startExtras(session) {
    const extras = window.lessonPlayerExtras;
    if (!extras) return;
    const options = { credentials: Boolean(session.credentials) };
    state.extras = { storyboard: null, chapters: null };
    if (session.storyboard) {
      extras.storyboard(video, absolute(session.storyboard), options)
        .then(function (tiles) { state.extras.storyboard = tiles ? tiles.length : 0; })
        .catch(function (error) { state.errors.push("storyboard: " + error); });
    }
    if (session.chapters) {
      extras.chapters(video, absolute(session.chapters), options)
        .then(function (cues) { state.extras.chapters = cues ? cues.length : 0; })
        .catch(function (error) { state.errors.push("chapters: " + error); });
    }
  }

  start().catch(function (error) { fatal(String(error)); });
})();
