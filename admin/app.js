/* Espace instructeur de Mon soutien psy: the review queue, one candidature, its decisions.
 *
 * Plain JavaScript, an ES module (the helpers the patients' page shares are in common.js), no framework, no
 * inline code (the page's CSP forbids it). The access token lives in sessionStorage only. Every text shown
 * comes from this file: API errors are turned into French sentences and never displayed raw.
 */
import { $, ApiError, OFFLINE, announce, clearFlash, el, flash, formatDay, request, setFieldError } from "./common.js";

const TOKEN_KEY = "msp-admin-token";
// Written by the token trigger from the departments admins assign (never a user attribute).
const DEPARTMENTS_CLAIM = "msp:departments";

const STATUS_LABELS = {
  draft: "Brouillon",
  submitted: "Soumise",
  in_review: "En cours d'instruction",
  info_requested: "Informations demandées",
  accepted: "Acceptée",
  rejected: "Refusée",
  deconventioned: "Déconventionnée",
  withdrawn: "Retirée",
};
const ACTIONS = {
  start_review: { label: "Commencer l'instruction", help: "La candidature passe « en cours d'instruction ».", reason: false },
  request_info: { label: "Demander des informations", help: "Le psychologue peut compléter puis soumettre à nouveau.", reason: true },
  accept: { label: "Accepter", help: "Le psychologue est conventionné et apparaît dans l'annuaire.", reason: false },
  reject: { label: "Refuser", help: "La décision est définitive ; le motif est envoyé au psychologue.", reason: true },
  deconvention: { label: "Déconventionner", help: "Le psychologue quitte le dispositif et l'annuaire.", reason: true },
};
const DONE = {
  start_review: "L'instruction a commencé.",
  request_info: "La demande d'informations a été envoyée au psychologue.",
  accept: "La candidature est acceptée ; le psychologue en est informé.",
  reject: "La candidature est refusée ; le psychologue en est informé.",
  deconvention: "Le psychologue est déconventionné ; il en est informé.",
};
const HISTORY_LABELS = {
  create: "Création du brouillon",
  submit: "Soumission",
  withdraw: "Retrait",
  start_review: "Début de l'instruction",
  request_info: "Demande d'informations",
  accept: "Acceptation",
  reject: "Refus",
  deconvention: "Déconventionnement",
  resign: "Démission du psychologue",
  convention_end: "Fin de la convention",
  edit_listing: "Modification de la fiche annuaire",
  purge: "Effacement des données (durée de conservation échue)",
  download_document: "Lien de téléchargement d'une pièce",
};
// Decisions worth showing in a previous candidature's summary.
const DECISIVE = ["accept", "reject", "request_info", "deconvention", "resign", "convention_end", "withdraw"];
const ROLE_LABELS = { psychologists: "Psychologue", reviewers: "Instructeur", admins: "Administrateur", system: "Système" };
// A previous candidature is followed this many steps back at most.
const LINEAGE_DEPTH = 10;
const JOURNAL_ACTIONS = { lookup: "Consultation du quota", declare: "Déclaration de séance", cancel: "Annulation de séance" };
const JOURNAL_REFUSALS = {
  invalid_fields: "données invalides",
  quota_exhausted: "plafond de séances atteint",
  year_closed: "année close",
  not_conventioned: "psychologue non conventionné",
  not_found: "séance introuvable",
  lookup_limit_reached: "limite quotidienne de patients consultés atteinte",
  idempotency_key_reused: "clé d'idempotence réutilisée",
};
const DOCUMENT_LABELS = { diploma: "Diplôme", identity: "Pièce d'identité", identifier_proof: "Justificatif RPPS ou ADELI" };
const DOCUMENT_STATUS = { pending: "en cours de vérification", verified: "vérifié", rejected: "refusé" };
const PUBLICS = { enfants: "Enfants", adolescents: "Adolescents", adultes: "Adultes" };
const CIVILITY = { mme: "Mme", m: "M." };
const ALL_DEPARTMENTS = []
  .concat(Array.from({ length: 19 }, (_, i) => String(i + 1).padStart(2, "0")))
  .concat(["2A", "2B"])
  .concat(Array.from({ length: 75 }, (_, i) => String(i + 21)))
  .concat(["971", "972", "973", "974", "975", "976"]);

const dateFormat = new Intl.DateTimeFormat("fr-FR", { dateStyle: "long", timeStyle: "short", timeZone: "Europe/Paris" });
// A message set just before a navigation (e.g. "session expired") survives that navigation.
let keepFlash = false;

const state = {
  token: null,
  claims: null,
  queue: { status: "submitted", department: "", cursors: [null], page: 0 },
  candidature: null,
  journal: { sub: "", cursor: null },
  reviewer: null,
};

// ---------------------------------------------------------------- helpers

function formatDate(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : dateFormat.format(date);
}

function decodeClaims(token) {
  const parts = token.split(".");
  if (parts.length !== 3) throw new Error("format");
  const json = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(parts[1].length / 4) * 4, "="));
  const bytes = Uint8Array.from(json, (c) => c.charCodeAt(0));
  return JSON.parse(new TextDecoder().decode(bytes));
}

function groupsOf(claims) {
  const groups = claims["cognito:groups"];
  if (Array.isArray(groups)) return groups;
  return String(groups || "").replace(/[[\]]/g, "").split(/[\s,]+/).filter(Boolean);
}

function departmentsOf(claims) {
  if (groupsOf(claims).includes("admins")) return ALL_DEPARTMENTS;
  const claim = claims[DEPARTMENTS_CLAIM];
  const raw = (Array.isArray(claim) ? claim : String(claim || "").split(/[\s,]+/)).filter(Boolean);
  if (raw.includes("*")) return ALL_DEPARTMENTS;
  return raw.filter((code) => ALL_DEPARTMENTS.includes(code));
}

// ---------------------------------------------------------------- API

// The caller's token on every call; a 401 (expired or revoked) signs out before the caller sees it.
async function api(method, path, body, extraHeaders) {
  const headers = { Authorization: "Bearer " + state.token, Accept: "application/json", ...(extraHeaders || {}) };
  const options = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  try {
    return await request(path, options);
  } catch (error) {
    if (error.status === 401) signOut("Votre session a expiré ou le jeton n'est plus valide : reconnectez-vous.");
    throw error;
  }
}

function friendly(error) {
  if (!(error instanceof ApiError)) return "Une erreur inattendue est survenue. Rechargez la page puis réessayez.";
  switch (error.status) {
    case 0:
      return OFFLINE;
    case 403:
      return "Cette action n'est pas ouverte à votre profil ou à ce département.";
    case 404:
      return "Cette candidature n'existe pas ou ne relève pas de vos départements.";
    case 429:
    case 503:
      return "Le service est très sollicité. Réessayez dans un instant.";
    default:
      return "L'opération n'a pas pu aboutir. Réessayez dans un instant ; si le problème persiste, contactez le support.";
  }
}

// ---------------------------------------------------------------- views

function show(view, title) {
  for (const id of ["view-signin", "view-queue", "view-candidature", "view-journal", "view-reviewers"]) {
    $(id).hidden = id !== view;
  }
  document.title = title + " — Espace instructeur — Mon soutien psy";
}

function focusHeading(id) {
  const heading = $(id);
  heading.focus();
}

// ---------------------------------------------------------------- sign-in

function renderAccount() {
  const signedIn = Boolean(state.token);
  $("account").hidden = !signedIn;
  if (!signedIn) return;
  const groups = groupsOf(state.claims);
  const role = groups.includes("admins") ? "Administrateur" : "Instructeur";
  $("admin-nav").hidden = !groups.includes("admins");
  const departments = departmentsOf(state.claims);
  const scope = departments === ALL_DEPARTMENTS ? "tous les départements" : "départements " + departments.join(", ");
  $("account-who").textContent = role + " · " + scope;
}

function signOut(message) {
  keepFlash = Boolean(message);
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.claims = null;
  renderAccount();
  if (location.hash !== "#/connexion") location.hash = "#/connexion";
  else route();
  if (message) flash(message, "warning");
}

function validateToken(raw) {
  const token = raw.trim().replace(/^Bearer\s+/i, "");
  if (!token) return { error: "Collez le jeton d'accès fourni par « make token »." };
  let claims;
  try {
    claims = decodeClaims(token);
  } catch (_) {
    return { error: "Ce texte n'est pas un jeton d'accès : il doit comporter trois parties séparées par des points." };
  }
  const groups = groupsOf(claims);
  if (!groups.includes("reviewers") && !groups.includes("admins")) {
    return {
      error:
        "Ce jeton n'est pas celui d'un instructeur ou d'un administrateur. Un compte sans second facteur " +
        "d'authentification n'en obtient pas : configurez votre application d'authentification, puis reconnectez-vous.",
    };
  }
  if (claims.exp && claims.exp * 1000 < Date.now()) return { error: "Ce jeton a expiré : demandez-en un nouveau." };
  return { token, claims };
}

function onSignIn(event) {
  event.preventDefault();
  const input = $("token");
  const result = validateToken(input.value);
  if (result.error) {
    setFieldError($("token-field"), input, $("token-error"), "token-hint", result.error);
    input.focus();
    return;
  }
  setFieldError($("token-field"), input, $("token-error"), "token-hint", "");
  input.value = "";
  sessionStorage.setItem(TOKEN_KEY, result.token);
  state.token = result.token;
  state.claims = result.claims;
  renderAccount();
  clearFlash();
  fillDepartments();
  location.hash = "#/file";
}

function renderSignIn() {
  show("view-signin", "Connexion");
  focusHeading("signin-title");
}

// ---------------------------------------------------------------- queue

function fillDepartments() {
  const select = $("filter-department");
  const keep = select.value;
  select.replaceChildren(el("option", { value: "", text: "Tous mes départements" }));
  for (const code of departmentsOf(state.claims)) select.append(el("option", { value: code, text: code }));
  select.value = keep;
}

function queueHash() {
  const params = new URLSearchParams({ statut: state.queue.status });
  if (state.queue.department) params.set("departement", state.queue.department);
  return "#/file?" + params.toString();
}

function onFilter(event) {
  event.preventDefault();
  state.queue.status = $("filter-status").value;
  state.queue.department = $("filter-department").value;
  state.queue.cursors = [null];
  state.queue.page = 0;
  const target = queueHash();
  if (location.hash === target) loadQueue(true);
  else location.hash = target;
}

function queueRow(entry) {
  const name = [CIVILITY[entry.civility], entry.first_name, entry.last_name].filter(Boolean).join(" ") || "Sans nom";
  const link = el("a", { href: "#/candidatures/" + encodeURIComponent(entry.id), text: name });
  return el(
    "tr",
    {},
    el("th", { scope: "row" }, link),
    el("td", { text: entry.department }),
    el("td", { text: entry.city ? entry.city + (entry.postcode ? " (" + entry.postcode + ")" : "") : "—" }),
    el("td", { text: formatDate(entry.submitted_at) }),
    el("td", {}, el("span", { class: "badge " + entry.status, text: STATUS_LABELS[entry.status] || entry.status })),
  );
}

async function loadQueue(focus) {
  show("view-queue", "File d'instruction");
  $("journal-link").hidden = !isAdmin();
  $("filter-status").value = state.queue.status;
  $("filter-department").value = state.queue.department;
  const params = new URLSearchParams({ status: state.queue.status, limit: "20" });
  if (state.queue.department) params.set("department", state.queue.department);
  const cursor = state.queue.cursors[state.queue.page];
  if (cursor) params.set("cursor", cursor);
  const rows = $("queue-rows");
  $("queue-summary").textContent = "Chargement de la file…";
  let page;
  try {
    page = await api("GET", "/review/candidatures?" + params.toString());
  } catch (error) {
    if (error.status === 401) return;
    rows.replaceChildren();
    $("queue-summary").textContent = "";
    flash(friendly(error), "error");
    return;
  }
  rows.replaceChildren(...page.results.map(queueRow));
  const where = state.queue.department ? "dans le département " + state.queue.department : "dans vos départements";
  const label = STATUS_LABELS[state.queue.status].toLowerCase();
  const count = page.results.length;
  const summary =
    count === 0
      ? "Aucune candidature « " + label + " » " + where + "."
      : count + (count > 1 ? " candidatures" : " candidature") + " « " + label + " » " + where +
        (page.next_cursor ? " sur cette page ; d'autres suivent." : ".");
  $("queue-summary").textContent = summary;
  $("queue-table").hidden = count === 0;
  if (page.next_cursor) state.queue.cursors[state.queue.page + 1] = page.next_cursor;
  else state.queue.cursors.length = state.queue.page + 1;
  $("next-page").disabled = !page.next_cursor;
  $("previous-page").disabled = state.queue.page === 0;
  $("page-number").textContent = "Page " + (state.queue.page + 1);
  announce(summary);
  if (focus) focusHeading("queue-title");
}

function onPage(delta) {
  const target = state.queue.page + delta;
  if (target < 0 || target >= state.queue.cursors.length) return;
  state.queue.page = target;
  loadQueue(false).then(() => {
    const button = delta > 0 ? $("next-page") : $("previous-page");
    if (button.disabled) $("queue-title").focus();
  });
}

// ---------------------------------------------------------------- access journal (admins)

function isAdmin() {
  return groupsOf(state.claims).includes("admins");
}

function journalOutcome(outcome) {
  if (outcome === "accepted") return "Acceptée";
  if (outcome === "replayed") return "Rejouée (même clé d'idempotence)";
  const reason = (outcome || "").replace(/^refused:/, "");
  return "Refusée : " + (JOURNAL_REFUSALS[reason] || reason.replace(/_/g, " "));
}

function journalRow(entry) {
  return el(
    "tr",
    {},
    el("td", { text: formatDate(entry.at) }),
    el("th", { scope: "row", text: JOURNAL_ACTIONS[entry.action] || entry.action }),
    el("td", { text: journalOutcome(entry.outcome) }),
    el("td", { class: "key", text: entry.patient_key || "—" }),
    el("td", { class: "key", text: entry.session_id || "—" }),
  );
}

function renderJournal(sub) {
  show("view-journal", "Journal d'accès");
  $("journal-sub").value = sub;
  $("journal-rows").replaceChildren();
  $("journal-table").hidden = true;
  $("journal-more").hidden = true;
  $("journal-summary").textContent = "";
  setFieldError($("journal-sub-field"), $("journal-sub"), $("journal-sub-error"), "journal-sub-hint", "");
  state.journal = { sub, cursor: null };
  if (sub) loadJournal(false);
  focusHeading("journal-title");
}

async function loadJournal(more) {
  const params = new URLSearchParams({ limit: "25" });
  if (more && state.journal.cursor) params.set("cursor", state.journal.cursor);
  $("journal-summary").textContent = "Chargement du journal…";
  let page;
  try {
    page = await api("GET", "/admin/psychologists/" + encodeURIComponent(state.journal.sub) + "/access-journal?" + params);
  } catch (error) {
    if (error.status === 401) return;
    $("journal-summary").textContent = "";
    if (error.status === 422) {
      const message = "Cet identifiant n'est pas valide : lettres, chiffres et @ . _ : + - uniquement.";
      setFieldError($("journal-sub-field"), $("journal-sub"), $("journal-sub-error"), "journal-sub-hint", message);
      $("journal-sub").focus();
    } else flash(friendly(error), "error");
    return;
  }
  const rows = page.entries.map(journalRow);
  if (more) $("journal-rows").append(...rows);
  else $("journal-rows").replaceChildren(...rows);
  const shown = $("journal-rows").children.length;
  state.journal.cursor = page.next_cursor;
  $("journal-table").hidden = shown === 0;
  $("journal-more").hidden = !page.next_cursor;
  const summary =
    shown === 0
      ? "Aucun accès enregistré pour " + state.journal.sub + "."
      : shown + (shown > 1 ? " accès affichés" : " accès affiché") + " pour " + state.journal.sub +
        (page.next_cursor ? " ; des entrées plus anciennes existent." : ".");
  $("journal-summary").textContent = summary;
  announce(summary);
  if (more && rows.length) rows[0].querySelector("th").setAttribute("tabindex", "-1");
  if (more && rows.length) rows[0].querySelector("th").focus();
  else if (more) $("journal-title").focus();
}

function onJournal(event) {
  event.preventDefault();
  const sub = $("journal-sub").value.trim();
  if (!sub) {
    const message = "Saisissez l'identifiant du compte du psychologue.";
    setFieldError($("journal-sub-field"), $("journal-sub"), $("journal-sub-error"), "journal-sub-hint", message);
    $("journal-sub").focus();
    return;
  }
  const target = "#/journal?psychologue=" + encodeURIComponent(sub);
  if (location.hash === target) renderJournal(sub);
  else location.hash = target;
}

// ---------------------------------------------------------------- candidature

function definitionList(node, rows) {
  node.replaceChildren();
  for (const [term, value] of rows) {
    node.append(el("dt", { text: term }), el("dd", {}, value === null || value === undefined || value === "" ? "—" : value));
  }
}

function renderCandidature(c) {
  const name = [CIVILITY[c.civility], c.first_name, c.last_name].filter(Boolean).join(" ") || "Candidature sans nom";
  $("candidature-title").textContent = "Candidature de " + name;
  const badge = $("candidature-status");
  badge.textContent = STATUS_LABELS[c.status] || c.status;
  badge.className = "badge " + c.status;
  $("candidature-version").textContent = String(c.version);
  $("candidature-department").textContent = c.department || "—";

  const reason = $("candidature-reason");
  if (c.status_reason) {
    reason.replaceChildren(el("p", {}, el("strong", { text: "Dernier motif communiqué : " }), c.status_reason));
    reason.hidden = false;
  } else {
    reason.hidden = true;
  }

  const website = c.website ? el("a", { href: c.website, rel: "noopener noreferrer", target: "_blank", text: c.website + " (nouvel onglet)" }) : null;
  definitionList($("identity"), [
    ["Nom", name],
    ["Courriel", c.email],
    ["Téléphone", c.phone],
    ["Courriel public", c.public_email],
    ["Téléphone public", c.public_phone],
    ["Site web", website],
  ]);
  const identifier = c.identifier ? c.identifier.type.toUpperCase() + " " + c.identifier.value : null;
  const diploma = c.diploma ? c.diploma.university + " (" + c.diploma.year + ")" : null;
  definitionList($("professional"), [
    ["Identifiant", identifier],
    ["Diplôme", diploma],
    ["Expérience", c.experience_years === undefined ? null : c.experience_years + " an" + (c.experience_years > 1 ? "s" : "")],
    ["Publics", (c.publics || []).map((p) => PUBLICS[p] || p).join(", ")],
    ["Langues", (c.languages || []).join(", ")],
    ["Téléconsultation", c.teleconsultation === undefined ? null : c.teleconsultation ? "Oui" : "Non"],
    ["Soumise le", formatDate(c.submitted_at)],
  ]);

  $("practices").replaceChildren(
    ...(c.practices || []).map((p) =>
      el("li", {}, p.address, el("br"), p.postcode + " " + p.city + " (département " + p.department + ")"),
    ),
  );
  if (!(c.practices || []).length) $("practices").append(el("li", { text: "Aucun cabinet renseigné." }));

  const documents = $("documents");
  documents.replaceChildren();
  for (const d of c.documents || []) {
    const label = DOCUMENT_LABELS[d.kind] || d.kind;
    const row = el("div", { class: "document-row" }, el("span", {}, el("strong", { text: label }), " — " + (DOCUMENT_STATUS[d.status] || d.status)));
    if (d.status === "verified") {
      const button = el("button", { type: "button", class: "button secondary", "data-document": d.document_id, text: "Obtenir le lien : " + label });
      row.append(button);
    } else if (d.reason) {
      row.append(el("span", { class: "muted", text: d.reason }));
    }
    documents.append(el("li", {}, row));
  }
  if (!(c.documents || []).length) documents.append(el("li", { text: "Aucune pièce déposée." }));

  renderActions(c);
}

function renderActions(c) {
  const allowed = c.allowed_actions || [];
  $("no-action").hidden = allowed.length > 0;
  const form = $("action-form");
  form.hidden = allowed.length === 0;
  const choices = $("action-choices");
  choices.replaceChildren();
  for (const action of allowed) {
    const meta = ACTIONS[action] || { label: action, help: "" };
    const id = "action-" + action;
    const input = el("input", { type: "radio", name: "action", id, value: action, "aria-describedby": id + "-help" });
    choices.append(
      el(
        "div",
        { class: "choice" },
        input,
        el("label", { for: id, class: "choice-label" }, el("strong", { text: meta.label }), el("span", { id: id + "-help", text: meta.help })),
      ),
    );
  }
  $("reason").value = "";
  $("effective-date").value = "";
  $("effective-field").hidden = !allowed.includes("deconvention");
  clearActionErrors();
}

function clearActionErrors() {
  setFieldError($("action-fieldset"), null, $("action-error"), null, "");
  setFieldError($("reason-field"), $("reason"), $("reason-error"), "reason-hint", "");
}

async function loadHistory(id) {
  const list = $("history");
  try {
    const body = await api("GET", "/candidatures/" + encodeURIComponent(id) + "/history");
    list.replaceChildren(
      ...body.events.map((e) => {
        const who = (ROLE_LABELS[e.role] || e.role) + " " + e.actor;
        const what = HISTORY_LABELS[e.action] || e.action;
        const when = el("span", { class: "when", text: formatDate(e.at) });
        if (e.action === "download_document") {
          const kind = (e.reason || "").split(" ")[0];
          return el("li", {}, when, el("strong", { text: what }), " (" + (DOCUMENT_LABELS[kind] || kind) + ") par " + who);
        }
        const move = e.from_status ? (STATUS_LABELS[e.from_status] || e.from_status) + " → " : "";
        const item = el("li", {}, when, el("strong", { text: what }), " (" + move + (STATUS_LABELS[e.to_status] || e.to_status) + ") par " + who);
        if (e.reason) item.append(el("br"), "Motif : « " + e.reason + " »");
        if (e.effective_date) item.append(el("br"), "Date d'effet : " + formatDay(e.effective_date));
        return item;
      }),
    );
  } catch (error) {
    if (error.status === 401) return;
    list.replaceChildren(el("li", { text: "L'historique n'a pas pu être chargé. " + friendly(error) }));
  }
}

function conventionPeriod(c) {
  if (!c.convention_start) return "jamais conventionné au titre de cette candidature";
  const start = "conventionné du " + formatDay(c.convention_start);
  if (!c.convention_end) return start + " à ce jour";
  return start + (c.status === "accepted" ? " jusqu'au " : " au ") + formatDay(c.convention_end);
}

function lineageEntry(c, events, current) {
  const title = current ? "Candidature affichée" : "Candidature précédente";
  const heading = el("h3", {}, title + " — " + (STATUS_LABELS[c.status] || c.status));
  const item = el("li", {}, heading);
  const facts = [
    ["Créée le", formatDate(c.created_at)],
    ["Soumise le", formatDate(c.submitted_at)],
    ["Convention", conventionPeriod(c)],
  ];
  const list = el("dl", { class: "details" });
  definitionList(list, facts);
  item.append(list);
  const decisions = events.filter((e) => DECISIVE.includes(e.action));
  if (decisions.length) {
    item.append(
      el(
        "ul",
        { class: "plain-list" },
        ...decisions.map((e) => {
          const line = el("li", {}, el("span", { class: "when", text: formatDate(e.at) + " " }), el("strong", { text: HISTORY_LABELS[e.action] || e.action }));
          if (e.effective_date) line.append(" (effet le " + formatDay(e.effective_date) + ")");
          if (e.reason) line.append(" — motif : « " + e.reason + " »");
          return line;
        }),
      ),
    );
  }
  if (!current) item.append(el("p", {}, el("a", { href: "#/candidatures/" + encodeURIComponent(c.id), text: "Ouvrir cette candidature précédente" })));
  return item;
}

async function loadLineage(c) {
  const list = $("lineage");
  list.replaceChildren(lineageEntry(c, [], true));
  let previous = c.previous_candidature_id;
  for (let step = 0; previous && step < LINEAGE_DEPTH; step += 1) {
    try {
      const [earlier, history] = await Promise.all([
        api("GET", "/candidatures/" + encodeURIComponent(previous)),
        api("GET", "/candidatures/" + encodeURIComponent(previous) + "/history"),
      ]);
      if (!state.candidature || state.candidature.id !== c.id) return;
      list.append(lineageEntry(earlier, history.events, false));
      previous = earlier.previous_candidature_id;
    } catch (error) {
      if (error.status === 401) return;
      list.append(el("li", { text: "Une candidature précédente existe mais n'est pas consultable (hors de votre périmètre ou effacée)." }));
      return;
    }
  }
}

async function loadCandidature(id, focus) {
  show("view-candidature", "Candidature");
  $("back-to-queue").setAttribute("href", queueHash());
  if (!state.candidature || state.candidature.id !== id) $("history").replaceChildren();
  let candidature;
  try {
    candidature = await api("GET", "/candidatures/" + encodeURIComponent(id));
  } catch (error) {
    if (error.status === 401) return;
    state.candidature = null;
    $("candidature-title").textContent = "Candidature introuvable";
    for (const node of ["identity", "professional", "practices", "documents", "history", "lineage"]) $(node).replaceChildren();
    $("action-form").hidden = true;
    $("no-action").hidden = true;
    $("candidature-reason").hidden = true;
    $("candidature-status").textContent = "—";
    flash(friendly(error), "error");
    if (focus) focusHeading("candidature-title");
    return;
  }
  state.candidature = candidature;
  renderCandidature(candidature);
  document.title = $("candidature-title").textContent + " — Espace instructeur — Mon soutien psy";
  // Focus moves now, never after the history arrives: by then the user may already be acting.
  if (focus) focusHeading("candidature-title");
  await Promise.all([loadHistory(id), loadLineage(candidature)]);
}

async function onDocument(event) {
  const button = event.target.closest("button[data-document]");
  if (!button || !state.candidature) return;
  const id = state.candidature.id;
  const label = button.textContent.replace("Obtenir le lien : ", "");
  button.disabled = true;
  try {
    const ticket = await api("GET", "/candidatures/" + encodeURIComponent(id) + "/documents/" + encodeURIComponent(button.dataset.document));
    const minutes = Math.round(ticket.expires_in / 60);
    const link = el("a", {
      href: ticket.url,
      target: "_blank",
      rel: "noopener noreferrer",
      text: "Ouvrir : " + label + " (nouvel onglet, lien valable " + minutes + " minutes)",
    });
    button.replaceWith(link);
    link.focus();
  } catch (error) {
    button.disabled = false;
    if (error.status !== 401) flash(friendly(error), "error");
  }
}

async function onAction(event) {
  event.preventDefault();
  const c = state.candidature;
  if (!c) return;
  clearActionErrors();
  const chosen = document.querySelector('input[name="action"]:checked');
  const reasonInput = $("reason");
  const reason = reasonInput.value.trim();
  if (!chosen) {
    setFieldError($("action-fieldset"), null, $("action-error"), null, "Choisissez une action.");
    const first = document.querySelector('input[name="action"]');
    if (first) first.focus();
    return;
  }
  const action = chosen.value;
  if (ACTIONS[action] && ACTIONS[action].reason && !reason) {
    setFieldError($("reason-field"), reasonInput, $("reason-error"), "reason-hint", "Indiquez le motif : il sera communiqué au psychologue.");
    reasonInput.focus();
    return;
  }
  const submit = $("action-submit");
  submit.disabled = true;
  try {
    const body = { action, expected_version: c.version };
    if (reason) body.reason = reason;
    const effective = $("effective-date").value;
    if (action === "deconvention" && effective) body.effective_date = effective;
    await api("POST", "/candidatures/" + encodeURIComponent(c.id) + "/transitions", body);
    await loadCandidature(c.id, false);
    flash(DONE[action] || "La décision est enregistrée.", "success").focus();
  } catch (error) {
    if (error.status === 401) return;
    if (error.status === 409 && ["version_conflict", "invalid_transition"].includes(error.code)) {
      await loadCandidature(c.id, false);
      flash(
        "Un autre instructeur a modifié cette candidature avant vous. Elle vient d'être rechargée : " +
          "vérifiez son nouvel état avant de décider.",
        "warning",
      ).focus();
    } else if (error.status === 409 && error.code === "already_conventioned") {
      flash("Ce psychologue est déjà conventionné au titre d'une autre candidature.", "error").focus();
    } else if (error.status === 422) {
      const onReason = error.details.some((d) => d.field === "reason");
      const message = onReason ? "Indiquez le motif : il sera communiqué au psychologue." : "Vérifiez l'action choisie et le motif.";
      setFieldError($("reason-field"), reasonInput, $("reason-error"), "reason-hint", message);
      reasonInput.focus();
    } else {
      flash(friendly(error), "error").focus();
    }
  } finally {
    submit.disabled = false;
  }
}


// ---------------------------------------------------------------- reviewers' departments (admins)

function scopePath(sub) {
  return "/admin/reviewers/" + encodeURIComponent(sub) + "/departments";
}

function scopeText(departments) {
  if (!departments.length) return "aucun département";
  if (departments.includes("*")) return "tous les départements";
  return (departments.length > 1 ? "départements " : "département ") + departments.join(", ");
}

function renderReviewerScope(view) {
  const scope = view.scope;
  state.reviewer = scope;
  $("reviewer-scope").hidden = false;
  $("reviewer-scope-title").textContent = "Instructeur " + scope.reviewer_sub;
  $("reviewer-scope-current").textContent =
    scope.version === 0
      ? "Aucun département ne lui a encore été attribué."
      : "Attribués : " + scopeText(scope.departments) + " (par " + scope.updated_by + ", le " + formatDate(scope.updated_at) + ").";
  $("scope-departments").value = scope.departments.join(", ");
  setFieldError($("scope-departments-field"), $("scope-departments"), $("scope-departments-error"), "scope-departments-hint", "");
  const history = $("scope-history");
  history.replaceChildren(
    ...view.history.map((change) =>
      el(
        "li",
        {},
        el("span", { class: "when", text: formatDate(change.at) }),
        el("strong", { text: scopeText(change.to_departments) }),
        " (auparavant " + scopeText(change.from_departments) + ") par l'administrateur " + change.actor,
      ),
    ),
  );
  if (!view.history.length) history.append(el("li", { text: "Aucune attribution pour l'instant." }));
}

async function loadReviewerScope(sub, focus) {
  let view;
  try {
    view = await api("GET", scopePath(sub));
  } catch (error) {
    if (error.status === 401) return false;
    $("reviewer-scope").hidden = true;
    const message = error.status === 404 ? "Cet identifiant n'est pas celui d'un compte." : friendly(error);
    setFieldError($("reviewer-sub-field"), $("reviewer-sub"), $("reviewer-sub-error"), "reviewer-sub-hint", message);
    $("reviewer-sub").focus();
    return false;
  }
  renderReviewerScope(view);
  if (focus) focusHeading("reviewer-scope-title");
  return true;
}

function renderReviewers() {
  show("view-reviewers", "Départements des instructeurs");
  if (!groupsOf(state.claims).includes("admins")) {
    location.replace(queueHash());
    return;
  }
  focusHeading("reviewers-title");
}

function onReviewerLookup(event) {
  event.preventDefault();
  const input = $("reviewer-sub");
  const sub = input.value.trim();
  if (!sub) {
    setFieldError($("reviewer-sub-field"), input, $("reviewer-sub-error"), "reviewer-sub-hint", "Indiquez l'identifiant de l'instructeur.");
    input.focus();
    return;
  }
  setFieldError($("reviewer-sub-field"), input, $("reviewer-sub-error"), "reviewer-sub-hint", "");
  loadReviewerScope(sub, true);
}

async function onScopeSave(event) {
  event.preventDefault();
  const reviewer = state.reviewer;
  if (!reviewer) return;
  const input = $("scope-departments");
  const departments = input.value.split(/[\s,;]+/).map((code) => code.trim().toUpperCase()).filter(Boolean);
  const unknown = departments.filter((code) => code !== "*" && !ALL_DEPARTMENTS.includes(code));
  const fieldError = (message) => {
    setFieldError($("scope-departments-field"), input, $("scope-departments-error"), "scope-departments-hint", message);
    input.focus();
  };
  if (unknown.length) return fieldError("Départements inconnus : " + unknown.join(", ") + ".");
  if (departments.includes("*") && departments.length > 1) return fieldError("* désigne déjà tous les départements : indiquez-le seul.");
  const submit = $("scope-submit");
  submit.disabled = true;
  try {
    const version = { "If-Match": String(reviewer.version) };
    const saved = await api("PUT", scopePath(reviewer.reviewer_sub), { departments }, version);
    await loadReviewerScope(saved.reviewer_sub, false);
    flash("Les départements de l'instructeur sont enregistrés : " + scopeText(saved.departments) + ". Ils s'appliquent à son prochain jeton.", "success").focus();
  } catch (error) {
    if (error.status === 401) return;
    if (error.status === 412) {
      await loadReviewerScope(reviewer.reviewer_sub, false);
      flash("Un autre administrateur a modifié ces départements avant vous. Ils viennent d'être rechargés : vérifiez-les avant d'enregistrer.", "warning").focus();
    } else if (error.status === 422) {
      fieldError("Vérifiez les codes de départements.");
    } else {
      flash(friendly(error), "error").focus();
    }
  } finally {
    submit.disabled = false;
  }
}

// ---------------------------------------------------------------- routing

function route() {
  const hash = location.hash || "";
  if (!state.token) {
    renderSignIn();
    return;
  }
  clearFlashOnNavigation();
  if (hash === "#/instructeurs") {
    renderReviewers();
    return;
  }
  const match = hash.match(/^#\/candidatures\/([^/?]+)$/);
  if (match) {
    loadCandidature(decodeURIComponent(match[1]), true);
    return;
  }
  if (hash.startsWith("#/journal") && isAdmin()) {
    const params = new URLSearchParams(hash.split("?")[1] || "");
    renderJournal(params.get("psychologue") || "");
    return;
  }
  if (hash.startsWith("#/file")) {
    const params = new URLSearchParams(hash.split("?")[1] || "");
    const status = params.get("statut") || "submitted";
    const department = params.get("departement") || "";
    if (status !== state.queue.status || department !== state.queue.department) {
      state.queue = { status: STATUS_LABELS[status] ? status : "submitted", department, cursors: [null], page: 0 };
    }
    loadQueue(true);
    return;
  }
  location.replace(queueHash());
}

function clearFlashOnNavigation() {
  if (keepFlash) keepFlash = false;
  else clearFlash();
}

function start() {
  const stored = sessionStorage.getItem(TOKEN_KEY);
  if (stored) {
    const result = validateToken(stored);
    if (result.error) sessionStorage.removeItem(TOKEN_KEY);
    else {
      state.token = result.token;
      state.claims = result.claims;
      fillDepartments();
    }
  }
  renderAccount();
  $("signin-form").addEventListener("submit", onSignIn);
  $("sign-out").addEventListener("click", () => signOut("Vous êtes déconnecté."));
  $("filters").addEventListener("submit", onFilter);
  $("next-page").addEventListener("click", () => onPage(1));
  $("previous-page").addEventListener("click", () => onPage(-1));
  $("documents").addEventListener("click", onDocument);
  $("action-form").addEventListener("submit", onAction);
  $("journal-form").addEventListener("submit", onJournal);
  $("journal-more").addEventListener("click", () => loadJournal(true));
  $("reviewer-lookup").addEventListener("submit", onReviewerLookup);
  $("reviewer-scope-form").addEventListener("submit", onScopeSave);
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", start);
