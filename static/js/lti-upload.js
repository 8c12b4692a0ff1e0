// "Upload a new video" in the LMS lesson picker (templates/lti/deep_link_upload.html, docs/adr/0033).
// 1. The form's title, description and the file's size go to the page's own URL (session and CSRF
//    token, like the picker): the server checks the platform's switch and quota, makes the lesson and
//    answers with an upload grant for it.
// 2. The file goes up through the admin widget's uploader (lesson-upload.js: direct to S3 or tus,
//    resumable, with progress), authenticated by the grant alone: no cookie is needed.
// 3. Once the bytes are in, the grant is posted to the "done" URL, which answers with the signed
//    Deep Linking response that returns to the LMS (processing goes on meanwhile).
(function () {
  "use strict";
  const form = document.getElementById("lti-upload-form");
  const fileInput = document.getElementById("lti-upload-file");
  const message = document.getElementById("lti-upload-message");
  const done = document.getElementById("lti-upload-done");
  const base = JSON.parse(document.getElementById("lti-upload-config").textContent);
  window.ltiUpload = {state: "idle", error: null};

  function refuse(reason) {
    window.ltiUpload.state = "failed";
    window.ltiUpload.error = reason;
    message.textContent = reason;
    message.hidden = false;
    for (const element of form.elements) element.disabled = false;
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    message.hidden = true;
    window.ltiUpload.state = "starting";
    const body = new URLSearchParams({
      title: form.elements.title.value,
      description: form.elements.description.value,
      size: String(file.size),
    });
    for (const element of form.elements) element.disabled = true;
    let answer;
    try {
      const response = await fetch(base.start, {
        method: "POST",
        credentials: "same-origin",
        headers: {"X-CSRFToken": form.elements.csrfmiddlewaretoken.value, "Accept": "application/json"},
        body: body,
      });
      answer = await response.json().catch(() => ({}));
      if (!response.ok) { refuse(answer.detail || "refused (" + response.status + ")"); return; }
    } catch (err) {
      refuse("network error: " + err.message);
      return;
    }
    window.ltiUpload.state = "uploading";
    done.elements.token.value = answer.token;
    document.addEventListener("lesson-upload:done", function () {
      window.ltiUpload.state = "returning";
      done.submit();
    }, {once: true});
    const config = {...base, lesson: answer.lesson, token: answer.token, reload: false};
    window.lessonUploadAttach(fileInput, config).start(file);
  });
})();
