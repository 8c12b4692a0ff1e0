// The lesson admin's upload widget (templates/admin/courses/lesson/change_form.html). Choosing a
// video uploads it at once, with a progress bar and a Cancel button:
// - straight to S3 when the server says direct uploads are available (S3 storage, docs/adr/0026):
//   parts go in parallel to presigned part URLs, each with its MD5 (signed into the URL, so storage
//   refuses a damaged part); a failed part is retried; the same file chosen again after a reload
//   carries on with the parts storage already holds; the server checks the parts and starts processing;
// - otherwise over tus (docs/adr/0009), in chunks through the web process, resumed from its offset.
// Without JavaScript the plain form upload of the "Video" field still works.
//
// The LMS lesson picker's upload page (static/js/lti-upload.js) uses the same uploader through
// window.lessonUploadAttach(input, config): there config.token, an upload grant for one lesson, is
// sent as "Authorization: LessonUpload <token>" instead of the session and CSRF header (the LMS
// iframe may keep no cookies), config.lesson is set once the lesson is made, and with
// config.reload false the page is told "lesson-upload:done" instead of being reloaded.
window.lessonUploadAttach = function (input, config) {
  "use strict";
  const PARALLEL = 6;
  const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000, 20000, 30000, 60000];

  const box = document.createElement("div");
  box.id = "upload-box";
  box.innerHTML = '<progress id="upload-progress" max="100" value="0" aria-label="Upload progress" hidden></progress>' +
    ' <button type="button" id="upload-cancel" class="button" hidden>Cancel upload</button>' +
    '<p id="upload-status" role="status" aria-live="polite"></p>';
  input.insertAdjacentElement("afterend", box);
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const cancel = document.getElementById("upload-cancel");
  const csrfField = document.querySelector("[name=csrfmiddlewaretoken]");
  // The grant, when there is one, is the only credential sent (no cookies, so no CSRF token either).
  const auth = config.token ? {"Authorization": "LessonUpload " + config.token} : {"X-CSRFToken": csrfField ? csrfField.value : ""};
  const mb = (n) => (n / 1e6).toFixed(1) + " MB";
  window.lessonUpload = {state: "idle", error: null, transport: null, timings: []};
  let current = null;  // {cancel: async () => ...}

  function finish(state, text) {
    window.lessonUpload.state = state;
    status.textContent = text;
    cancel.hidden = true;
    input.disabled = false;
    input.value = "";
    current = null;
  }

  function progress(name, sent, total) {
    bar.value = Math.floor((sent / total) * 100);
    status.textContent = "Uploading " + name + ": " + mb(sent) + " of " + mb(total);
  }

  function failed(reason) {
    window.lessonUpload.error = reason;
    finish("failed", "Upload failed: " + reason);
  }

  function succeeded() {
    bar.value = 100;
    finish("done", "Upload complete. Processing has started.");
    if (config.reload === false) document.dispatchEvent(new CustomEvent("lesson-upload:done"));
    else setTimeout(() => window.location.reload(), 500);  // the page then shows processing live
  }

  async function begin(file) {
    if (!file) return;
    input.disabled = true;  // the file goes up here, not with the form
    bar.hidden = false;
    bar.value = 0;
    cancel.hidden = false;
    window.lessonUpload.state = "uploading";
    status.textContent = "Starting upload…";
    if (await directAvailable()) {
      window.lessonUpload.transport = "direct";
      directUpload(file);
    } else if (window.tus && tus.isSupported) {
      window.lessonUpload.transport = "tus";
      tusUpload(file);
    } else {
      failed("this browser cannot upload here; save the form with the file chosen instead");
    }
  }

  cancel.addEventListener("click", async function () {
    if (!current) return;
    await current.cancel();
    bar.hidden = true;
    finish("cancelled", "Upload cancelled.");
  });

  // --- tus ---------------------------------------------------------------------------------------
  function tusUpload(file) {
    const upload = new tus.Upload(file, {
      endpoint: config.tus,
      chunkSize: config.chunk,
      retryDelays: RETRY_DELAYS,
      metadata: {lesson: config.lesson, filename: file.name, filetype: file.type},
      headers: auth,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => progress(file.name, sent, total),
      onShouldRetry(err) {
        const code = err.originalResponse ? err.originalResponse.getStatus() : 0;
        // Network errors, server errors, offset conflicts, a busy upload and a damaged chunk are
        // retried (resuming from the server's offset); other refusals (413 with its reason) are final.
        const retry = !code || code >= 500 || code === 409 || code === 423 || code === 460;
        if (retry) status.textContent = "Connection lost; resuming…";
        return retry;
      },
      onError(err) {
        const body = err.originalResponse ? err.originalResponse.getBody() : "";
        failed(body || String(err.message || err));
      },
      onSuccess: succeeded,
    });
    current = {cancel: () => upload.abort(true)};  // terminate: the server drops what it received
    // The same file chosen again after a closed tab or a crash carries on where it stopped.
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
      upload.start();
    });
  }

  // --- direct to S3 ------------------------------------------------------------------------------
  // Where an upload's id is kept to resume it after a reload. A third-party frame (the LMS's iframe)
  // whose browser blocks third-party cookies may not touch localStorage at all (reading the property
  // throws): the upload then resumes within the page only.
  const resumeStore = (function () {
    try {
      window.localStorage.getItem("lesson-upload:probe");
      return window.localStorage;
    } catch (err) {
      const kept = new Map();
      return {getItem: (k) => kept.get(k) ?? null, setItem: (k, v) => kept.set(k, v), removeItem: (k) => kept.delete(k)};
    }
  })();

  class Refused extends Error {}  // the server said no, with a reason: final, not retried

  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(config.direct + path, {
        method: method,
        credentials: config.token ? "omit" : "same-origin",
        headers: {...auth, "Content-Type": "application/json", "Accept": "application/json"},
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new Error("network: " + err.message);
    }
    if (response.status === 204) return null;
    const data = await response.json().catch(() => ({}));
    if (response.ok) return data;
    if (response.status >= 500 || response.status === 429) throw new Error(data.detail || "server error " + response.status);
    // A refusal has a reason ("detail"), or names the fields that were wrong.
    const reason = data.detail || Object.entries(data).map(([field, why]) => field + ": " + [].concat(why).join(" ")).join("; ");
    throw new Refused(reason || "refused (" + response.status + ")");
  }

  async function directAvailable() {
    if (!config.direct || !config.hasher || !window.Worker || !window.fetch) return false;
    try {
      return (await api("GET", "")).available === true;
    } catch (err) {
      return false;
    }
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // The MD5 of a part, from the hasher (lesson-upload-hasher.js), a Web Worker: hashing 16 MiB takes a
  // tenth of a second or more, which the page's own thread spends sending parts and drawing progress.
  function startHasher() {
    const worker = new Worker(config.hasher);
    worker.postMessage({hashwasm: config.hashwasm});
    const pending = new Map();
    let nextId = 0;
    let broken = null;  // the worker failed (its script did not load, or it crashed): every hash fails
    worker.onmessage = ({data}) => {
      const waiting = pending.get(data.id);
      pending.delete(data.id);
      if (data.error) waiting.reject(new Error("hashing failed: " + data.error));
      else waiting.resolve(data.md5);
    };
    worker.onerror = (event) => {
      broken = new Error("hashing failed: " + (event.message || "the hasher did not start"));
      for (const waiting of pending.values()) waiting.reject(broken);
      pending.clear();
    };
    return {
      md5: (blob) => new Promise((resolve, reject) => {
        if (broken) { reject(broken); return; }
        const id = nextId++;
        pending.set(id, {resolve: resolve, reject: reject});
        worker.postMessage({id: id, blob: blob});
      }),
      stop: () => worker.terminate(),
    };
  }

  function putPart(url, headers, body, onProgress, requests) {
    // XMLHttpRequest, not fetch: it reports upload progress.
    return new Promise((resolve, reject) => {
      const xhr = new XMLHttpRequest();
      requests.add(xhr);
      xhr.open("PUT", url);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.upload.onprogress = (event) => onProgress(event.loaded);
      xhr.onload = () => {
        requests.delete(xhr);
        const etag = xhr.getResponseHeader("ETag");
        if (xhr.status === 200 && etag) resolve(etag);
        else if (xhr.status === 200) reject(new Refused("storage does not expose the ETag header: the bucket's CORS rule must expose it (README: Direct uploads to S3)"));
        else if (xhr.status === 400 && /BadDigest/.test(xhr.responseText)) reject(new Error("a part arrived damaged"));
        else reject(new Error("storage answered " + xhr.status));
      };
      xhr.onerror = () => { requests.delete(xhr); reject(new Error("network error (is the bucket's CORS rule in place?)")); };
      xhr.onabort = () => { requests.delete(xhr); reject(new Refused("cancelled")); };
      xhr.send(body);
    });
  }

  // Parts go through three stages that overlap: the hasher reads and hashes them in order, a signer
  // asks the server for the URLs of hashed parts a batch at a time (one request for several parts: the
  // web process does little per upload), and PARALLEL senders PUT the signed parts. Hashing stays at most
  // AHEAD parts ahead of the senders, so that few signed URLs wait long enough to expire.
  const AHEAD = 2 * PARALLEL;
  const HASHING = 2;
  const SIGN_BATCH = PARALLEL;

  async function directUpload(file) {
    const resumeKey = "lesson-upload:" + config.lesson + ":" + file.name + ":" + file.size + ":" + file.lastModified;
    const requests = new Set();
    let cancelled = false;
    let halted = false;  // one part failed for good: the others stop after the one they send
    let upload = null;
    const etags = {};
    const hasher = startHasher();
    current = {
      cancel: async () => {
        cancelled = true;
        for (const xhr of requests) xhr.abort();
        resumeStore.removeItem(resumeKey);
        if (upload) await api("DELETE", upload.id + "/").catch(() => null);
      },
    };
    // The stages wait for each other's progress: every change wakes whoever waits.
    let wake = null;
    let changed = null;
    const notify = () => { if (wake) { const w = wake; wake = changed = null; w(); } };
    const until = async (condition) => {
      while (!condition()) {
        if (!changed) changed = new Promise((resolve) => { wake = resolve; });
        await changed;
      }
    };
    const stopped = () => cancelled || halted;
    try {
      // The same file chosen again after a reload carries on with the parts storage holds.
      const previous = resumeStore.getItem(resumeKey);
      if (previous) {
        const state = await api("GET", previous + "/").catch(() => null);
        if (state && state.status === "active" && state.size === file.size) {
          upload = state;
          const versions = {};
          for (const part of state.parts) (versions[part.number] = versions[part.number] || []).push(part);
          for (const [number, found] of Object.entries(versions)) {
            const n = Number(number);
            const size = Math.min(n * state.part_size, file.size) - (n - 1) * state.part_size;
            if (found.length === 1 && found[0].size === size) etags[n] = found[0].etag;
          }
        }
      }
      if (!upload) {
        upload = await api("POST", "", {lesson: config.lesson, filename: file.name, size: file.size});
        resumeStore.setItem(resumeKey, upload.id);
      }
      const partSize = upload.part_size;
      const sizeOf = (n) => Math.min(n * partSize, file.size) - (n - 1) * partSize;
      // The PUT sends the file's own slice (a Blob): Chromium sent an ArrayBuffer body of 16 MiB six to
      // fifteen times slower here.
      const slice = (n) => file.slice((n - 1) * partSize, (n - 1) * partSize + sizeOf(n));
      const todo = [];
      let sent = 0;
      for (let n = 1; n <= upload.part_count; n++) {
        if (etags[n]) sent += sizeOf(n); else todo.push(n);
      }
      const inFlight = {};
      const report = () => {
        let moving = 0;
        for (const value of Object.values(inFlight)) moving += value;
        progress(file.name, sent + moving, file.size);
      };
      report();

      const hashed = [];  // {number, md5, timing} waiting for their URL
      const ready = [];  // ...with their URL, waiting for a sender
      let unsigned = todo.length;  // parts still to sign

      async function sign(parts) {
        for (let attempt = 0; ; attempt++) {
          try {
            const answer = await api("POST", upload.id + "/part-urls/", {parts: parts.map((p) => ({number: p.number, md5: p.md5}))});
            return answer.parts;
          } catch (err) {
            if (err instanceof Refused || attempt + 1 >= RETRY_DELAYS.length || cancelled) throw err;
            await sleep(RETRY_DELAYS[attempt + 1]);
          }
        }
      }

      // HASHING parts are read at once, so that one part's read overlaps another's hashing.
      let toHash = 0;
      let hashing = 0;
      async function hashAll() {
        while (toHash < todo.length) {
          await until(() => stopped() || hashed.length + ready.length + hashing < AHEAD);
          if (stopped() || toHash >= todo.length) return;
          const n = todo[toHash++];
          hashing++;
          const t0 = performance.now();
          const md5 = await hasher.md5(slice(n));
          hashing--;
          hashed.push({number: n, md5: md5, timing: {part: n, hash: performance.now() - t0}});
          notify();
        }
      }

      async function signAll() {
        while (unsigned > 0) {
          // A batch at a time, or whatever is hashed when the senders are about to run out.
          await until(() => stopped() || hashed.length >= SIGN_BATCH ||
            (hashed.length > 0 && (ready.length === 0 || hashed.length === unsigned)));
          if (stopped()) return;
          const batch = hashed.splice(0, SIGN_BATCH);
          const t0 = performance.now();
          const urls = await sign(batch);
          const took = performance.now() - t0;
          batch.forEach((part, i) => {
            part.signed = urls[i];
            part.signedAt = performance.now();
            part.timing.sign = took;
            ready.push(part);
          });
          unsigned -= batch.length;
          notify();
        }
      }

      async function send(part) {
        const n = part.number;
        for (let attempt = 0; ; attempt++) {
          if (cancelled) throw new Refused("cancelled");
          try {
            // A fresh URL for another try, or when this one waited long enough to near its expiry
            // (a slow connection sends each part for minutes).
            if (attempt > 0 || performance.now() - part.signedAt > config.url_seconds * 500) {
              part.signed = (await sign([part]))[0];
              part.signedAt = performance.now();
            }
            const t0 = performance.now();
            etags[n] = await putPart(part.signed.url, part.signed.headers, slice(n), (loaded) => { inFlight[n] = loaded; report(); }, requests);
            // Where a part's time went (read and hash, sign, send), for whoever tunes this.
            window.lessonUpload.timings.push({...part.timing, put: performance.now() - t0});
            delete inFlight[n];
            sent += sizeOf(n);
            report();
            return;
          } catch (err) {
            delete inFlight[n];
            if (err instanceof Refused || attempt + 1 >= RETRY_DELAYS.length) throw err;
            status.textContent = "Connection lost; retrying part " + n + "…";
            await sleep(RETRY_DELAYS[attempt + 1]);
          }
        }
      }

      async function sender() {
        while (true) {
          await until(() => stopped() || ready.length > 0 || unsigned === 0);
          if (stopped()) return;
          const part = ready.shift();
          if (!part) {  // another sender took it first
            if (unsigned === 0) return;
            continue;
          }
          notify();  // room for the hasher
          await send(part);
        }
      }

      // Whichever stage fails first stops the others (after the part each is sending) and is reported.
      const stage = (run) => run().catch((err) => { halted = true; notify(); throw err; });
      await Promise.all([...Array.from({length: HASHING}, () => stage(hashAll)), stage(signAll),
        ...Array.from({length: Math.min(PARALLEL, todo.length || 1)}, () => stage(sender))]);
      if (cancelled) return;
      status.textContent = "Checking the upload…";
      const parts = Object.keys(etags).map(Number).sort((a, b) => a - b).map((n) => ({number: n, etag: etags[n]}));
      for (let attempt = 0; ; attempt++) {
        try {
          await api("POST", upload.id + "/complete/", {parts: parts});
          break;
        } catch (err) {
          if (err instanceof Refused || attempt + 1 >= RETRY_DELAYS.length) throw err;
          await sleep(RETRY_DELAYS[attempt + 1]);
        }
      }
      resumeStore.removeItem(resumeKey);
      succeeded();
    } catch (err) {
      if (cancelled) return;
      for (const xhr of requests) xhr.abort();
      failed(err.message || String(err));
    } finally {
      hasher.stop();
    }
  }

  // The admin's widget starts when a file is chosen; the picker's page calls start() itself.
  return {start: begin, listen: () => input.addEventListener("change", () => begin(input.files[0]))};
};

(function () {
  const input = document.getElementById("id_video");
  const configNode = document.getElementById("upload-config");
  if (input && configNode) window.lessonUploadAttach(input, JSON.parse(configNode.textContent)).listen();
})();
