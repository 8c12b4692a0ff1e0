// The lesson upload widget's hasher (lesson-upload.js), a Web Worker: the MD5 of each part of a direct
// upload, computed off the page's thread so that the page keeps sending parts and reporting progress.
// The first message names hash-wasm's script ({hashwasm: url}); then each {id, blob} is answered with
// {id, md5} (base64, as Content-MD5 carries it) or {id, error}. A part is hashed as it is read, a
// piece at a time (no copy of the whole part in memory), and parts asked for together are read together.
"use strict";

function base64(bytes) {
  return btoa(String.fromCharCode.apply(null, bytes));
}

async function hash(blob) {
  const md5 = await self.hashwasm.createMD5();
  const reader = blob.stream().getReader();
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    md5.update(value);
  }
  return base64(md5.digest("binary"));
}

self.onmessage = ({data}) => {
  if (data.hashwasm) {
    importScripts(data.hashwasm);
    return;
  }
  hash(data.blob).then(
    (md5) => self.postMessage({id: data.id, md5: md5}),
    (err) => self.postMessage({id: data.id, error: String((err && err.message) || err)}),
  );
};
