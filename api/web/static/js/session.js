// Where the bearer token lives: sessionStorage (this tab only) unless the user asked to be remembered
// (localStorage). The token is only decoded for display; the API verifies it on every request.

const KEY = "todo-engine.token";

export function loadToken() {
  return sessionStorage.getItem(KEY) ?? localStorage.getItem(KEY);
}

export function saveToken(token, remember) {
  clearToken();
  (remember ? localStorage : sessionStorage).setItem(KEY, token);
}

export function clearToken() {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
}

/** The claims of a JWT (unverified), or {} when it is not one. */
export function claimsOf(token) {
  const part = String(token).split(".")[1];
  if (!part) return {};
  try {
    const base64 = part.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
    const claims = JSON.parse(new TextDecoder().decode(bytes));
    return claims && typeof claims === "object" ? claims : {};
  } catch {
    return {};
  }
}

/** A bearer token as pasted: trims whitespace and a leading "Bearer ". */
export function normalizeToken(text) {
  return String(text).trim().replace(/^bearer\s+/i, "");
}
