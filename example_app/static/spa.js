// The example's single-page app: plain JavaScript, no build step, no library.
//
// 1. Sign in with the SPA's own public client: Authorization Code with PKCE, asking for an
//    access token for the API (audience) with the API scope, and a refresh token.
// 2. Call the API with "Authorization: Bearer <access token>". The API exchanges that token at
//    Token Vault for a Google token; the SPA never sees Google's token.
// 3. When the API answers 401 with "connect" (Google not connected, or scopes missing), connect
//    Google through the My Account API with a token of the SPA's own (audience .../me/, from
//    its refresh token), then call the API again.
//
// Someone already signed in to this app has an Auth0 session, so the SPA signs in through it
// without a page (prompt=none), as auth0-spa-js does, instead of asking a second time.
//
// Tokens live in sessionStorage so they survive the trips to Auth0 and back; a real app would
// use Auth0's SPA SDK (auth0-spa-js), which does this and more.
"use strict";

(function () {
  const config = JSON.parse(document.getElementById("spa-config").textContent);
  const store = window.sessionStorage;
  const here = window.location.origin + window.location.pathname;
  const $ = (id) => document.getElementById(id);

  function base64url(bytes) {
    let text = "";
    new Uint8Array(bytes).forEach((b) => { text += String.fromCharCode(b); });
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function randomString() {
    return base64url(crypto.getRandomValues(new Uint8Array(32)));
  }

  async function challengeOf(verifier) {
    return base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  }

  // A sentence for the user; the error code and its description go under "Details".
  function show(status, error) {
    $("spa-status").textContent = status;
    $("spa-details").hidden = !error;
    $("spa-detail").textContent = error
      ? [error.error, error.error_description].filter(Boolean).join(": ")
      : "";
  }

  // Say why the user has to sign in, with the link that does it.
  function askToSignIn(status, error) {
    show(status + " ", error);
    const link = Object.assign(document.createElement("a"), {
      href: "#", id: "spa-sign-in-again", textContent: "Sign in again",
    });
    link.addEventListener("click", (event) => {
      event.preventDefault();
      guarded(signIn)();
    });
    $("spa-status").append(link, ".");
    $("spa-sign-in").hidden = true;
  }

  function tokens() {
    return JSON.parse(store.getItem("spa-tokens") || "null");
  }

  async function tokenEndpoint(fields) {
    const answer = await fetch(config.domain + "/oauth/token", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ client_id: config.clientId, ...fields }),
    });
    const body = await answer.json();
    if (!answer.ok) throw new Error(body.error_description || body.error);
    return body;
  }

  // silent: through the user's Auth0 session, with no page (Auth0 answers login_required
  // when there is none).
  async function signIn(silent) {
    const verifier = randomString();
    const state = randomString();
    store.setItem("spa-login", JSON.stringify({ verifier, state }));
    const query = new URLSearchParams({
      client_id: config.clientId,
      response_type: "code",
      redirect_uri: here,
      audience: config.audience,
      scope: config.scope,
      state,
      code_challenge: await challengeOf(verifier),
      code_challenge_method: "S256",
    });
    if (silent === true) query.set("prompt", "none");
    window.location.assign(config.domain + "/authorize?" + query);
  }

  async function finishSignIn(params) {
    const pending = JSON.parse(store.getItem("spa-login") || "null");
    store.removeItem("spa-login");
    if (!pending || params.get("state") !== pending.state) throw new Error("state mismatch");
    const answer = await tokenEndpoint({
      grant_type: "authorization_code",
      code: params.get("code"),
      code_verifier: pending.verifier,
      redirect_uri: here,
    });
    store.setItem("spa-tokens", JSON.stringify({
      access_token: answer.access_token,
      refresh_token: answer.refresh_token,
    }));
  }

  // A My Account API token of the SPA's own, from its refresh token (Multi-Resource Refresh Token).
  async function myAccountToken(connect) {
    const answer = await tokenEndpoint({
      grant_type: "refresh_token",
      refresh_token: tokens().refresh_token,
      audience: connect.audience,
      scope: connect.scope,
    });
    return answer.access_token;
  }

  let lastConnect = null;

  async function callApi() {
    show("Calling " + config.api + " ...");
    const answer = await fetch(config.api, {
      headers: { Authorization: "Bearer " + tokens().access_token },
    });
    const body = await answer.json();
    $("spa-connect").hidden = true;
    $("spa-events").replaceChildren();
    if (answer.ok) {
      for (const event of body.events) {
        const item = document.createElement("li");
        item.append(Object.assign(document.createElement("span"), { textContent: event.summary }));
        item.append(Object.assign(document.createElement("span"), {
          className: "muted", textContent: event.when,
        }));
        $("spa-events").append(item);
      }
      show("The API answered " + answer.status + " for " + body.user + ".");
    } else if (answer.status === 401 && body.connect) {
      lastConnect = body.connect;
      $("spa-connect").hidden = false;
      show("Google is not connected for this account yet: connect it to load your calendar.", body);
    } else if (answer.status === 401) {
      // The access token is expired, revoked or not for this API: it is of no more use.
      store.removeItem("spa-tokens");
      signedIn();
      askToSignIn("Your sign-in has expired or was revoked.", body);
    } else {
      show("The API could not load your calendar (it answered " + answer.status + ").", body);
    }
  }

  async function connect() {
    const meToken = await myAccountToken(lastConnect);
    const verifier = randomString();
    const state = randomString();
    const answer = await fetch(lastConnect.url, {
      method: "POST",
      headers: { Authorization: "Bearer " + meToken, "Content-Type": "application/json" },
      body: JSON.stringify({
        ...lastConnect.body,
        redirect_uri: here,
        state,
        code_challenge: await challengeOf(verifier),
        code_challenge_method: "S256",
      }),
    });
    const started = await answer.json();
    if (!answer.ok) throw new Error(started.detail || started.title);
    store.setItem("spa-connect", JSON.stringify({
      auth_session: started.auth_session,
      verifier,
      state,
      complete: lastConnect.url.replace(/\/connect$/, "/complete"),
      audience: lastConnect.audience,
      scope: lastConnect.scope,
    }));
    const ticket = encodeURIComponent(started.connect_params.ticket);
    window.location.assign(started.connect_uri + "?ticket=" + ticket);
  }

  async function finishConnect(params) {
    const pending = JSON.parse(store.getItem("spa-connect") || "null");
    store.removeItem("spa-connect");
    if (!pending || params.get("state") !== pending.state) throw new Error("state mismatch");
    const meToken = await myAccountToken(pending);
    const answer = await fetch(pending.complete, {
      method: "POST",
      headers: { Authorization: "Bearer " + meToken, "Content-Type": "application/json" },
      body: JSON.stringify({
        auth_session: pending.auth_session,
        connect_code: params.get("connect_code"),
        redirect_uri: here,
        code_verifier: pending.verifier,
      }),
    });
    if (!answer.ok) throw new Error((await answer.json()).detail);
  }

  function signedIn() {
    const yes = tokens() !== null;
    $("spa-sign-in").hidden = yes;
    $("spa-call").hidden = !yes;
    $("spa-sign-out").hidden = !yes;
    return yes;
  }

  async function start() {
    const params = new URLSearchParams(window.location.search);
    window.history.replaceState(null, "", here);
    if (params.get("error") === "login_required") {
      store.removeItem("spa-login");
      show("Not signed in."); // the silent sign-in found no Auth0 session
    } else if (params.has("error")) {
      store.removeItem("spa-login");
      show("Signing in did not finish.", {
        error: params.get("error"), error_description: params.get("error_description"),
      });
    } else if (params.has("code")) {
      await finishSignIn(params);
    } else if (params.has("connect_code")) {
      await finishConnect(params);
    }
    if (signedIn()) {
      await callApi();
    } else if (config.signedIn && !store.getItem("spa-silent")) {
      store.setItem("spa-silent", "tried"); // once per tab: never a loop of redirects
      await signIn(true);
    }
  }

  function guarded(action) {
    return () => action().catch((error) => show("Failed: " + error.message));
  }

  $("spa-sign-in").addEventListener("click", guarded(() => signIn(false)));
  $("spa-call").addEventListener("click", guarded(callApi));
  $("spa-connect").addEventListener("click", guarded(connect));
  $("spa-sign-out").addEventListener("click", () => {
    store.removeItem("spa-tokens");
    store.setItem("spa-silent", "tried"); // forgotten on purpose: no silent sign-in back
    $("spa-events").replaceChildren();
    show("Not signed in.");
    signedIn();
  });
  guarded(start)();
})();
