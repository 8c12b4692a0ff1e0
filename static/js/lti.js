// LTI 1.3 login and launch pages inside an LMS iframe.
// 1. Login: if the state cookie stuck, go on to the platform. If not (third-party cookies blocked),
//    keep state and nonce in the platform's storage with the LTI client-side postMessage API
//    (lti.put_data to the frame named by lti_storage_target), or offer a new window, where the
//    cookie is first-party.
// 2. Launch check: read the state back with lti.get_data and post it with the launch.
(function () {
  "use strict";
  const status = document.getElementById("lti-login-status");
  window.ltiStorage = { used: false, error: null };

  function storageFrame(target) {
    if (!target) return null;
    if (target === "_parent") return window.parent;
    try { return window.parent.frames[target] || null; } catch (e) { return null; }
  }

  function ask(frame, origin, subject, fields) {
    return new Promise(function (resolve, reject) {
      const messageId = (window.crypto && crypto.randomUUID) ? crypto.randomUUID() : String(Math.random());
      const timer = setTimeout(function () { done(); reject(new Error("no answer to " + subject)); }, 3000);
      function listen(event) {
        const data = event.data || {};
        if (event.origin !== origin && origin !== "*") return;
        if (data.subject !== subject + ".response" || data.message_id !== messageId) return;
        done();
        if (data.error) reject(new Error(data.error.message || data.error.code || "storage error"));
        else resolve(data);
      }
      function done() { clearTimeout(timer); window.removeEventListener("message", listen); }
      window.addEventListener("message", listen);
      frame.postMessage(Object.assign({ subject: subject, message_id: messageId }, fields), origin);
    });
  }

  function cookieStuck(name, value) {
    return document.cookie.split(";").some(function (part) { return part.trim() === name + "=" + value; });
  }

  function offerNewWindow(reason) {
    window.ltiStorage.error = reason;
    if (status) status.textContent = "";
    const offer = document.getElementById("lti-new-window");
    if (offer) offer.hidden = false;
  }

  const loginConfig = document.getElementById("lti-login-config");
  if (loginConfig) {
    const config = JSON.parse(loginConfig.textContent);
    if (cookieStuck(config.cookieName, config.state)) { window.location.replace(config.redirectUrl); return; }
    const frame = storageFrame(config.storageTarget);
    if (!frame) { offerNewWindow("cookies blocked and no platform storage"); return; }
    ask(frame, config.platformOrigin, "lti.put_data", { key: "state_" + config.state, value: config.state })
      .then(function () {
        return ask(frame, config.platformOrigin, "lti.put_data", { key: "nonce_" + config.nonce, value: config.nonce });
      })
      .then(function () { window.ltiStorage.used = true; window.location.replace(config.redirectUrl); })
      .catch(function (error) { offerNewWindow(String(error)); });
    return;
  }

  const checkConfig = document.getElementById("lti-launch-check-config");
  if (checkConfig) {
    const config = JSON.parse(checkConfig.textContent);
    const form = document.getElementById("lti-launch-check");
    const frame = storageFrame(config.storageTarget);
    if (!frame) { if (status) status.textContent = "This launch cannot be checked: open it again from the LMS."; return; }
    ask(frame, config.platformOrigin, "lti.get_data", { key: "state_" + config.state })
      .then(function (answer) {
        if (answer.value !== config.state) throw new Error("the stored state does not match");
        form.elements.lti_storage_state.value = answer.value;
        form.submit();
      })
      .catch(function (error) {
        if (status) status.textContent = "This launch could not be checked (" + error.message + "): open it again from the LMS.";
      });
  }
})();
