// The lesson admin's upload widget (templates/admin/courses/lesson/change_form.html). Choosing a
// video uploads it at once, with a progress bar and a Cancel button:
// - straight to S3 when the server says direct uploads are available (S3 storage, docs/adr/0026):
//   parts go in parallel to presigned part URLs, each with its MD5 (signed into the URL, so storage
//   refuses a damaged part); a failed part is retried; the same file chosen again after a reload
//   carries on with the parts storage already holds; the server checks the parts and starts processing;
// - otherwise over tus (docs/adr/0009), in chunks through the web process, resumed from its offset.
// Without JavaScript the plain form upload of the "Video" field still works.
(function () {
  "use strict";
  const input = document.getElementById("id_video");
  const configNode = document.getElementById("upload-config");
  if (!input || !configNode) return;
  const config = JSON.parse(configNode.textContent);
  const PARALLEL = 4;
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
  const csrf = document.querySelector("[name=csrfmiddlewaretoken]").value;
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
    setTimeout(() => window.location.reload(), 500);  // the page then shows processing live
  }

  input.addEventListener("change", async function () {
    const file = input.files[0];
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
  });

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
      headers: {"X-CSRFToken": csrf},
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
  class Refused extends Error {}  // the server said no, with a reason: final, not retried

  async function api(method, path, body) {
    let response;
    try {
      response = await fetch(config.direct + path, {
        method: method,
        credentials: "same-origin",
        headers: {"X-CSRFToken": csrf, "Content-Type": "application/json", "Accept": "application/json"},
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
    if (!config.direct || !window.hashwasm || !window.fetch) return false;
    try {
      return (await api("GET", "")).available === true;
    } catch (err) {
      return false;
    }
  }

  function base64(bytes) {
    return btoa(String.fromCharCode.apply(null, bytes));
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
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

  async function directUpload(file) {
    const resumeKey = "lesson-upload:" + config.lesson + ":" + file.name + ":" + file.size + ":" + file.lastModified;
    const requests = new Set();
    let cancelled = false;
    let upload = null;
    const etags = {};
    current = {
      cancel: async () => {
        cancelled = true;
        for (const xhr of requests) xhr.abort();
        localStorage.removeItem(resumeKey);
        if (upload) await api("DELETE", upload.id + "/").catch(() => null);
      },
    };
    try {
      // The same file chosen again after a reload carries on with the parts storage holds.
      const previous = localStorage.getItem(resumeKey);
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
        localStorage.setItem(resumeKey, upload.id);
      }
      const partSize = upload.part_size;
      const sizeOf = (n) => Math.min(n * partSize, file.size) - (n - 1) * partSize;
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
      const md5 = await hashwasm.createMD5();

      // Read, hash and sign a part. A worker does this for its next part while the current one is on
      // its way, so PARALLEL PUTs stay in flight.
      async function prepare(n) {
        const start = (n - 1) * partSize;
        const t0 = performance.now();
        // The PUT sends the file's own slice (a Blob): Chromium sent an ArrayBuffer body of 16 MiB
        // about six times slower here. The bytes are read only to hash them.
        const body = file.slice(start, start + sizeOf(n));
        const bytes = new Uint8Array(await body.arrayBuffer());
        md5.init();
        md5.update(bytes);
        const digest = base64(md5.digest("binary"));
        const t1 = performance.now();
        const signed = (await api("POST", upload.id + "/part-urls/", {parts: [{number: n, md5: digest}]})).parts[0];
        return {body: body, signed: signed, timing: {part: n, hash: t1 - t0, sign: performance.now() - t1}};
      }

      function settled(promise) {
        promise.catch(() => null);  // awaited later; not an unhandled rejection meanwhile
        return promise;
      }

      async function sendPart(n, ready, onSending) {
        let sending = false;
        const started = () => { if (!sending) { sending = true; onSending(); } };
        for (let attempt = 0; ; attempt++) {
          if (cancelled) throw new Refused("cancelled");
          try {
            const part = attempt === 0 ? await ready : await prepare(n);
            const t0 = performance.now();
            const put = putPart(part.signed.url, part.signed.headers, part.body, (loaded) => { inFlight[n] = loaded; report(); }, requests);
            started();
            etags[n] = await put;
            // Where a part's time went (read and hash, sign, send), for whoever tunes this.
            window.lessonUpload.timings.push({...part.timing, put: performance.now() - t0});
            delete inFlight[n];
            sent += sizeOf(n);
            report();
            return;
          } catch (err) {
            started();
            delete inFlight[n];
            if (err instanceof Refused || attempt + 1 >= RETRY_DELAYS.length) throw err;
            status.textContent = "Connection lost; retrying part " + n + "…";
            await sleep(RETRY_DELAYS[attempt + 1]);
          }
        }
      }

      let halted = false;  // one part failed for good: the others stop after the one they send
      async function worker() {
        try {
          let n = todo.shift();
          let ready = n === undefined ? null : settled(prepare(n));
          while (n !== undefined && !cancelled && !halted) {
            const next = todo.shift();
            let nextReady = null;
            await sendPart(n, ready, () => { if (next !== undefined) nextReady = settled(prepare(next)); });
            n = next;
            ready = nextReady || (n === undefined ? null : settled(prepare(n)));
          }
        } catch (err) {
          halted = true;
          throw err;
        }
      }
      await Promise.all(Array.from({length: Math.min(PARALLEL, todo.length || 1)}, worker));
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
      localStorage.removeItem(resumeKey);
      succeeded();
    } catch (err) {
      if (cancelled) return;
      for (const xhr of requests) xhr.abort();
      failed(err.message || String(err));
    }
  }
})();
