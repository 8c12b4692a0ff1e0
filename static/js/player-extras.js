// Player extras, the same for hls.js and Shaka Player: storyboard previews over a seek bar, the chapter
// list, and the caption menu. static/js/player.js calls these once a playback session is known. The
// storyboard and chapters are WebVTT files of the published version; we read them ourselves (a few
// lines) so both engines and native HLS behave alike. Captions come from the manifests (both engines).
(function () {
  "use strict";

  function parseTime(text) {
    const parts = text.trim().split(":").map(Number);
    return parts.reduce(function (total, part) { return total * 60 + part; }, 0);
  }

  // Cues of a WebVTT file: [{start, end, text}], in file order.
  function parseVtt(text) {
    const cues = [];
    text.replace(/\r\n?/g, "\n").split(/\n\n+/).forEach(function (block) {
      const lines = block.split("\n").filter(function (line) { return line.trim() !== ""; });
      const at = lines.findIndex(function (line) { return line.indexOf("-->") !== -1; });
      if (at === -1) return;
      const times = lines[at].split("-->");
      cues.push({ start: parseTime(times[0]), end: parseTime(times[1].trim().split(/\s+/)[0]),
                  text: lines.slice(at + 1).join("\n") });
    });
    return cues;
  }

  function clock(seconds) {
    const whole = Math.max(0, Math.floor(seconds));
    const h = Math.floor(whole / 3600), m = Math.floor((whole % 3600) / 60), s = whole % 60;
    return (h ? h + ":" + String(m).padStart(2, "0") : String(m)) + ":" + String(s).padStart(2, "0");
  }

  function fetchText(url, withCredentials) {
    return fetch(url, { credentials: withCredentials ? "include" : "same-origin" }).then(function (response) {
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.text();
    });
  }

  // --- Seek bar with storyboard previews ------------------------------------------------------------
  function storyboard(video, url, options) {
    const timeline = document.getElementById("player-timeline");
    if (!timeline || !url) return Promise.resolve(null);
    const bar = timeline.querySelector(".timeline-bar");
    const played = timeline.querySelector(".timeline-played");
    const preview = document.getElementById("storyboard-preview");
    const image = preview.querySelector(".storyboard-image");
    const label = preview.querySelector(".storyboard-time");
    return fetchText(url, options.credentials).then(function (text) {
      const tiles = parseVtt(text).map(function (cue) {
        const target = new URL(cue.text.trim(), url);
        const box = (target.hash.match(/xywh=(\d+),(\d+),(\d+),(\d+)/) || []).slice(1).map(Number);
        target.hash = "";
        return { start: cue.start, end: cue.end, src: target.href, x: box[0], y: box[1], w: box[2], h: box[3] };
      }).filter(function (tile) { return tile.w > 0; });
      if (!tiles.length) return null;
      const duration = function () { return video.duration || tiles[tiles.length - 1].end; };
      const timeAt = function (clientX) {
        const rect = bar.getBoundingClientRect();
        return Math.min(1, Math.max(0, (clientX - rect.left) / rect.width)) * duration();
      };
      function show(clientX) {
        const t = timeAt(clientX);
        const tile = tiles.find(function (c) { return t >= c.start && t < c.end; }) || tiles[tiles.length - 1];
        image.style.width = tile.w + "px";
        image.style.height = tile.h + "px";
        image.style.backgroundImage = "url(\"" + tile.src + "\")";
        image.style.backgroundPosition = -tile.x + "px " + -tile.y + "px";
        label.textContent = clock(t);
        const rect = bar.getBoundingClientRect();
        const left = Math.min(rect.width - tile.w, Math.max(0, clientX - rect.left - tile.w / 2));
        preview.style.left = left + "px";
        preview.hidden = false;
        preview.dataset.time = String(t);
        preview.dataset.tile = tile.x + "," + tile.y;
      }
      bar.addEventListener("pointermove", function (event) { show(event.clientX); });
      bar.addEventListener("pointerleave", function () { preview.hidden = true; });
      bar.addEventListener("click", function (event) { video.currentTime = timeAt(event.clientX); });
      bar.addEventListener("keydown", function (event) {
        const step = { ArrowLeft: -5, ArrowRight: 5 }[event.key];
        if (step) { video.currentTime = Math.min(duration(), Math.max(0, video.currentTime + step)); event.preventDefault(); }
      });
      video.addEventListener("timeupdate", function () {
        played.style.width = (100 * video.currentTime / duration()) + "%";
        bar.setAttribute("aria-valuenow", String(Math.round(video.currentTime)));
        bar.setAttribute("aria-valuetext", clock(video.currentTime) + " of " + clock(duration()));
      });
      bar.setAttribute("aria-valuemax", String(Math.round(duration())));
      timeline.hidden = false;
      return tiles;
    });
  }

  // --- Chapters ------------------------------------------------------------------------------------
  function chapters(video, url, options) {
    const nav = document.getElementById("player-chapters");
    if (!nav || !url) return Promise.resolve(null);
    const list = nav.querySelector("ol");
    // The chapters as a text track too, for assistive technology and browsers that list them.
    const track = document.createElement("track");
    track.kind = "chapters";
    track.src = url;
    track.srclang = options.language || "en";
    track.label = "Chapters";
    video.appendChild(track);
    return fetchText(url, options.credentials).then(function (text) {
      const cues = parseVtt(text);
      list.replaceChildren.apply(list, cues.map(function (cue) {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.className = "chapter";
        button.dataset.start = String(cue.start);
        button.textContent = clock(cue.start) + " " + cue.text;
        button.addEventListener("click", function () {
          video.currentTime = cue.start;
          if (video.paused) video.play().catch(function () { /* the controls remain */ });
        });
        item.appendChild(button);
        return item;
      }));
      video.addEventListener("timeupdate", function () {
        list.querySelectorAll("button").forEach(function (button, index) {
          const cue = cues[index];
          const current = video.currentTime >= cue.start && video.currentTime < cue.end;
          if (current) button.setAttribute("aria-current", "true"); else button.removeAttribute("aria-current");
        });
      });
      nav.hidden = cues.length === 0;
      return cues;
    });
  }

  // --- Caption menu --------------------------------------------------------------------------------
  // ``engine`` lists tracks as [{id, language, label}], tells the active id (or null) and selects one.
  function captionMenu(engine) {
    const select = document.getElementById("player-captions");
    if (!select) return { refresh: function () {} };
    select.addEventListener("change", function () { engine.select(select.value === "" ? null : select.value); });
    return {
      refresh: function () {
        const tracks = engine.list();
        const off = document.createElement("option");
        off.value = "";
        off.textContent = "Off";
        select.replaceChildren.apply(select, [off].concat(tracks.map(function (track) {
          const option = document.createElement("option");
          option.value = String(track.id);
          option.textContent = track.label || track.language;
          option.lang = track.language;
          return option;
        })));
        const active = engine.active();
        select.value = active === null ? "" : String(active);
        select.closest(".control").hidden = tracks.length === 0;
      },
    };
  }

  function hlsCaptions(hls, Hls) {
    const menu = captionMenu({
      list: function () {
        return hls.subtitleTracks.map(function (t, i) { return { id: i, language: t.lang || "", label: t.name }; });
      },
      active: function () { return hls.subtitleTrack >= 0 && hls.subtitleDisplay ? hls.subtitleTrack : null; },
      select: function (id) {
        if (id === null) { hls.subtitleDisplay = false; hls.subtitleTrack = -1; return; }
        hls.subtitleDisplay = true;
        hls.subtitleTrack = Number(id);
      },
    });
    hls.on(Hls.Events.SUBTITLE_TRACKS_UPDATED, menu.refresh);
    hls.on(Hls.Events.SUBTITLE_TRACK_SWITCH, menu.refresh);
    return menu;
  }

  function shakaCaptions(player) {
    // Shaka Player 5 shows the selected track; selectTextTrack(null) turns captions off.
    let off = false;
    const menu = captionMenu({
      list: function () {
        return player.getTextTracks().map(function (t) { return { id: t.id, language: t.language, label: t.label }; });
      },
      active: function () {
        const active = player.getTextTracks().find(function (t) { return t.active; });
        return active && !off ? active.id : null;
      },
      select: function (id) {
        off = id === null;
        if (off) { player.selectTextTrack(null); return; }
        const track = player.getTextTracks().find(function (t) { return String(t.id) === String(id); });
        if (track) player.selectTextTrack(track);
      },
    });
    ["trackschanged", "textchanged", "texttrackvisibility"].forEach(function (name) {
      player.addEventListener(name, menu.refresh);
    });
    return menu;
  }

  window.lessonPlayerExtras = {
    parseVtt: parseVtt,
    storyboard: storyboard,
    chapters: chapters,
    hlsCaptions: hlsCaptions,
    shakaCaptions: shakaCaptions,
  };
})();
