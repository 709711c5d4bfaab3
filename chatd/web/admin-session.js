// The admin token for chatd's operator pages (/admin, with admin-search.js, and the analytics
// page): kept in sessionStorage (this tab only), so signing in on either page holds for both;
// sent as a bearer token by api(), the one fetch helper of those pages.
// A wrong token (401), a closed admin API or too many wrong tokens end the sign-in, and the
// page is told why (onSignOut), so it can show its sign-in form with that message.
"use strict";

window.chatdAdminSession = (() => {
  const KEY = "chatd.admin.token";
  let token = sessionStorage.getItem(KEY) || "";
  let signedOut = () => {};

  class AuthError extends Error {}

  function signOut(message) {
    token = "";
    sessionStorage.removeItem(KEY);
    signedOut(message || "");
  }

  async function api(path, options = {}) {
    const headers = { Authorization: `Bearer ${token}`, ...(options.headers || {}) };
    const response = await fetch(`/api/admin${path}`, { ...options, headers, cache: "no-store" });
    if (response.ok) return response;
    let error = null;
    try {
      error = (await response.json()).error;
    } catch {
      // not JSON: a proxy's page; the status says enough
    }
    if (response.status === 401) {
      signOut("Wrong token. Enter the admin token again.");
      throw new AuthError("wrong token");
    }
    if (error && error.code === "admin_disabled") {
      signOut(error.message);
      throw new AuthError(error.message);
    }
    if (error && error.code === "too_many_auth_failures") {
      const wait = Math.ceil(Number(response.headers.get("Retry-After")) || 0);
      const message = "Too many wrong tokens from this address. " +
        (wait ? `Try again in ${wait} s.` : "Try again later.");
      signOut(message);
      throw new AuthError(message);
    }
    throw new Error((error && error.message) || `HTTP ${response.status}`);
  }

  /** Try `value` on `probe` (a GET path); kept for the tab only if it works. */
  async function signIn(value, probe) {
    token = value;
    await api(probe);
    sessionStorage.setItem(KEY, token);
  }

  /** A response's body saved as a file (the name from Content-Disposition, else `fallback`). */
  async function download(response, fallback) {
    const blob = await response.blob();
    const match = /filename="([^"]+)"/.exec(response.headers.get("Content-Disposition") || "");
    const url = URL.createObjectURL(blob);
    const link = document.createElement("a");
    link.href = url;
    link.download = match ? match[1] : fallback;
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  return {
    AuthError,
    api,
    getJSON: async (path) => (await api(path)).json(),
    signIn,
    signOut,
    download,
    get token() { return token; },
    onSignOut(callback) { signedOut = callback; },
  };
})();
