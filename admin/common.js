/* Mon soutien psy — what the reviewers' page (admin/app.js) and the patients' page (public/app.js) both use:
 * building the DOM, the live region and the notice box, a field's error, calls to the API and their errors.
 *
 * An ES module served from /admin/ (as the base styles, admin/app.css, are): both pages import it from the same
 * origin, under the same CSP. Every text it shows is French and comes from this file or its caller.
 */

const API = "/v1";

export const OFFLINE = "Le service ne répond pas. Vérifiez votre connexion puis réessayez.";

const dayFormat = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeZone: "UTC" });

export const $ = (id) => document.getElementById(id);

/* el("a", {href, text}, child, [children], ...): attributes null, undefined or false are left out, true is
 * present without a value; `text` sets the text; children may be nodes, text or arrays of them. */
export function el(tag, attributes, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function announce(message) {
  // Emptied first, then filled: screen readers read a repeated message again.
  const region = $("announcer");
  region.textContent = "";
  window.setTimeout(() => {
    region.textContent = message;
  }, 50);
}

export function flash(message, kind) {
  const box = $("flash");
  box.className = "notice " + (kind || "info");
  box.setAttribute("role", kind === "error" || kind === "warning" ? "alert" : "status");
  box.replaceChildren(el("p", { text: message }));
  box.hidden = false;
  return box;
}

export function clearFlash() {
  const box = $("flash");
  box.hidden = true;
  box.replaceChildren();
}

/* A field's error under it, read with its hint (aria-describedby); an empty message clears it. */
export function setFieldError(field, input, errorNode, hintId, message) {
  errorNode.textContent = message || "";
  errorNode.hidden = !message;
  field.classList.toggle("field-error", Boolean(message));
  if (input) {
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
    const described = [hintId, message ? errorNode.id : null].filter(Boolean).join(" ");
    input.setAttribute("aria-describedby", described);
  }
}

export function formatDay(isoDate) {
  return isoDate ? dayFormat.format(new Date(isoDate + "T00:00:00Z")) : "";
}

/* A refusal of the API: its status (0: no answer) and, from its body {error: {code, message, details}}, the code
 * and the details; the message stays the API's, for the logs: pages say their own sentence. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || error.code || String(status));
    this.status = status;
    this.code = error.code || (status === 0 ? "network" : "unknown");
    this.details = error.details || [];
  }
}

/* fetch on /v1: the parsed body of a success (null when there is none), an ApiError otherwise. */
export async function request(path, options) {
  let response;
  try {
    response = await fetch(API + path, options);
  } catch (_) {
    throw new ApiError(0, null);
  }
  let payload = null;
  try {
    payload = await response.json();
  } catch (_) {
    payload = null;
  }
  if (!response.ok) throw new ApiError(response.status, payload);
  return payload;
}
