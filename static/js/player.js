// Lesson player: asks the playback API for signed URLs, then plays HLS with hls.js or DASH with
// Shaka Player. State is exposed on window.lessonPlayer for the page and for browser tests.
(function () {
  "use strict";
  const video = document.getElementById("lesson-video");
  if (!video) return;
  const message = document.getElementById("player-message");
  const speed = document.getElementById("player-speed");
  const engine = video.dataset.engine === "shaka" ? "shaka" : "hls";
  const state = { engine: engine, state: "starting", fatalErrors: [], errors: [], instance: null, session: null };
  window.lessonPlayer = state;

  function say(text) { message.textContent = text; }
  function fatal(text) {
    state.fatalErrors.push(text);
    state.state = "error";
    say("Playback failed: " + text);
  }

  if (speed) speed.addEventListener("change", function () { video.playbackRate = Number(speed.value); });
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

  function playHls(url) {
    if (window.Hls && window.Hls.isSupported()) {
      const hls = new window.Hls({ enableWorker: true });
      state.instance = hls;
      hls.on(window.Hls.Events.ERROR, function (_event, data) {
        const text = data.type + ": " + data.details;
        if (data.fatal) fatal(text); else state.errors.push(text);
      });
      hls.loadSource(url);
      hls.attachMedia(video);
    } else if (video.canPlayType("application/vnd.apple.mpegurl")) {
      video.src = url; // Safari plays HLS natively.
    } else {
      fatal("this browser cannot play HLS");
      return;
    }
    video.play().catch(function () { /* autoplay may be blocked; the controls remain */ });
  }

  async function playShaka(url) {
    window.shaka.polyfill.installAll();
    if (!window.shaka.Player.isBrowserSupported()) { fatal("this browser cannot play DASH"); return; }
    const player = new window.shaka.Player();
    state.instance = player;
    await player.attach(video);
    player.addEventListener("error", function (event) {
      const error = event.detail;
      const text = "shaka " + error.code;
      if (error.severity === window.shaka.util.Error.Severity.CRITICAL) fatal(text); else state.errors.push(text);
    });
    try {
      await player.load(url);
    } catch (error) {
      fatal("shaka " + (error && error.code));
      return;
    }
    video.play().catch(function () { /* autoplay may be blocked; the controls remain */ });
  }

  async function start() {
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
      say(result.body.detail ? "You cannot watch this lesson: " + result.body.detail + "." : "You cannot watch this lesson.");
      return;
    }
    if (result.status !== 200) {
      fatal("the server answered " + result.status);
      return;
    }
    state.session = result.body;
    if (result.body.poster) video.poster = result.body.poster;
    state.state = "loading";
    if (engine === "shaka") await playShaka(result.body.dash); else playHls(result.body.hls);
  }

  start().catch(function (error) { fatal(String(error)); });
})();
