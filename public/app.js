/* Mon soutien psy — the patients' page: find a partner psychologist by commune, postcode or "near me",
 * with filters, a list and a map of the results, shareable profiles, and the open statistics.
 *
 * Plain JavaScript, an ES module (the helpers it shares with the reviewers' page are in /admin/common.js), no
 * framework and no inline code (the page's CSP forbids it). No cookie and no storage:
 * a search lives in the address (#/?lieu=...&lat=...&lon=...), so it can be bookmarked and shared, and a
 * profile has its own address (#/psychologue/<id>). Every text shown comes from this file.
 */
import { $, OFFLINE, announce, clearFlash, el, flash, formatDay, request, setFieldError } from "/admin/common.js";

const PAGE_SIZE = 10;
const SUGGESTIONS = 8;
const LANGUAGES = ["fr", "en", "es", "de", "it", "pt", "ar", "zh", "ru", "tr", "ro", "pl", "vi", "uk", "fa", "he", "oc", "br", "co", "eu", "ca", "nl", "el"];
const PUBLICS = { enfants: "enfants", adolescents: "adolescents", adultes: "adultes" };
const languageNames = new Intl.DisplayNames(["fr"], { type: "language" });
const decimal = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
const integer = new Intl.NumberFormat("fr-FR");
const monthName = new Intl.DateTimeFormat("fr-FR", { month: "long", year: "numeric", timeZone: "UTC" });

const state = {
  config: null,
  departments: null, // code -> name, for the statistics
  place: null, // the chosen starting point: {label, lat, lon}
  suggestions: [],
  active: -1,
  search: null, // {key, criteria, cursors, page, results, nextCursor}
  map: null,
  layer: null,
  tilesFailed: false,
  firstRoute: true,
};

// ---------------------------------------------------------------- helpers

function api(path) {
  return request(path, { headers: { Accept: "application/json" } });
}

function kilometres(value) {
  return value < 1 ? `${integer.format(Math.round(value * 1000))} m` : `${decimal.format(value)} km`;
}

function phoneText(e164) {
  // +33142000000 -> 01 42 00 00 00; other numbers as they are.
  const match = /^\+33(\d{9})$/.exec(e164 || "");
  return match ? ("0" + match[1]).replace(/(\d{2})(?=\d)/g, "$1 ") : e164;
}

function listOf(values, names) {
  return values.map((value) => names(value)).join(", ");
}

function languageName(code) {
  const name = languageNames.of(code) || code;
  return name.charAt(0).toLocaleUpperCase("fr") + name.slice(1);
}

function webLink(url) {
  try {
    const parsed = new URL(url);
    if (parsed.protocol !== "https:" && parsed.protocol !== "http:") return null;
    return el("a", { href: parsed.href, rel: "noopener noreferrer" }, parsed.host + parsed.pathname.replace(/\/$/, ""));
  } catch (ignored) {
    return null;
  }
}

function contactDetails(who) {
  const items = [];
  if (who.phone) items.push(el("li", {}, "Téléphone : ", el("a", { href: "tel:" + who.phone }, phoneText(who.phone))));
  if (who.email) items.push(el("li", {}, "Courriel : ", el("a", { href: "mailto:" + who.email }, who.email)));
  const site = who.website ? webLink(who.website) : null;
  if (site) items.push(el("li", {}, "Site : ", site));
  return items.length ? el("ul", { class: "contact" }, items) : el("p", {}, "Pas de coordonnées publiques.");
}

function showView(id, title) {
  document.querySelectorAll(".view").forEach((view) => {
    view.hidden = view.id !== id;
  });
  document.title = `${title} — Mon soutien psy`;
  const current = id === "view-stats" ? "nav-stats" : "nav-search";
  ["nav-search", "nav-stats"].forEach((link) => {
    if (link === current) $(link).setAttribute("aria-current", "page");
    else $(link).removeAttribute("aria-current");
  });
}

function focusHeading(id) {
  // Not on the first display: the page opens at its top, as any page does.
  if (!state.firstRoute) $(id).focus();
}

// ---------------------------------------------------------------- the commune field (ARIA combobox)

const combobox = {
  input: () => $("place"),
  list: () => $("place-list"),
  timer: null,
  request: 0,

  open() {
    this.list().hidden = false;
    this.input().setAttribute("aria-expanded", "true");
  },

  close() {
    this.list().hidden = true;
    this.input().setAttribute("aria-expanded", "false");
    this.input().removeAttribute("aria-activedescendant");
    state.active = -1;
  },

  render() {
    const options = state.suggestions.map((place, index) =>
      el(
        "li",
        { id: `place-option-${index}`, role: "option", "aria-selected": "false", "data-index": String(index), class: "option" },
        el("span", { class: "option-name" }, `${place.name} (${place.department})`),
        el("span", { class: "option-detail" }, place.postcodes.join(", ")),
      ),
    );
    this.list().replaceChildren(...options);
    if (options.length) this.open();
    else this.close();
  },

  move(step) {
    const count = state.suggestions.length;
    if (!count) return;
    state.active = (state.active + step + count) % count;
    this.list()
      .querySelectorAll("[role=option]")
      .forEach((option, index) => option.setAttribute("aria-selected", String(index === state.active)));
    const active = $(`place-option-${state.active}`);
    this.input().setAttribute("aria-activedescendant", active.id);
    active.scrollIntoView({ block: "nearest" });
  },

  choose(index) {
    const place = state.suggestions[index];
    if (!place) return;
    choosePlace(place);
    this.close();
    $("place-status").textContent = `${place.name} choisie.`;
  },

  async suggest(text) {
    const mine = ++this.request;
    let answer;
    try {
      answer = await api("/places?" + new URLSearchParams({ q: text, limit: String(SUGGESTIONS) }));
    } catch (error) {
      answer = { places: [] }; // e.g. a single digit: nothing to suggest yet
    }
    if (mine !== this.request || this.input().value.trim() !== text) return;
    state.suggestions = answer.places;
    state.active = -1;
    this.render();
    const count = answer.places.length;
    $("place-status").textContent = count
      ? `${count} commune${count > 1 ? "s" : ""} proposée${count > 1 ? "s" : ""}.`
      : "Aucune commune ne correspond.";
  },

  setup() {
    const input = this.input();
    input.addEventListener("input", () => {
      state.place = null; // typed again: the earlier choice no longer holds
      setPlaceError("");
      window.clearTimeout(this.timer);
      const text = input.value.trim();
      if (!text) {
        state.suggestions = [];
        this.close();
        return;
      }
      this.timer = window.setTimeout(() => this.suggest(text), 150);
    });
    input.addEventListener("keydown", (event) => {
      const opened = !this.list().hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!opened && state.suggestions.length) this.open();
        this.move(event.key === "ArrowDown" ? 1 : -1);
      } else if (event.key === "Enter" && opened && state.active >= 0) {
        event.preventDefault();
        this.choose(state.active);
      } else if (event.key === "Escape") {
        if (opened) {
          event.preventDefault();
          this.close();
        } else if (input.value) {
          input.value = "";
          state.place = null;
        }
      } else if (event.key === "Tab") {
        this.close();
      }
    });
    input.addEventListener("blur", () => window.setTimeout(() => this.close(), 200));
    // A click on a suggestion must not take the focus away from the field first.
    this.list().addEventListener("mousedown", (event) => event.preventDefault());
    this.list().addEventListener("click", (event) => {
      const option = event.target.closest("[role=option]");
      if (option) this.choose(Number(option.dataset.index));
    });
  },
};

function choosePlace(place) {
  state.place = { label: place.name, lat: place.lat, lon: place.lon };
  $("place").value = `${place.name} (${place.department})`;
  setPlaceError("");
}

function setPlaceError(message) {
  setFieldError($("place-field"), $("place"), $("place-error"), "place-hint", message);
}

// ---------------------------------------------------------------- search

const FILTERS = [
  ["filter-public", "public"],
  ["filter-teleconsultation", "teleconsultation"],
  ["filter-language", "langue"],
  ["filter-radius", "rayon"],
  ["filter-name", "nom"],
];

function criteriaFromForm() {
  const params = new URLSearchParams({ lieu: state.place.label, lat: String(state.place.lat), lon: String(state.place.lon) });
  FILTERS.forEach(([id, name]) => {
    const value = $(id).value.trim();
    if (value) params.set(name, value);
  });
  return params;
}

function formFromCriteria(params) {
  state.place = { label: params.get("lieu") || "ce lieu", lat: Number(params.get("lat")), lon: Number(params.get("lon")) };
  $("place").value = state.place.label === "votre position" ? "Ma position" : state.place.label;
  FILTERS.forEach(([id, name]) => {
    const field = $(id);
    field.value = params.get(name) || (id === "filter-radius" ? "10" : "");
  });
}

function go(params) {
  const hash = "#/?" + params.toString();
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function submitSearch(event) {
  event.preventDefault();
  clearFlash();
  if (!state.place) {
    const text = $("place").value.trim();
    if (!text) {
      setPlaceError("Saisissez une commune ou un code postal, ou utilisez « Autour de moi ».");
      $("place").focus();
      return;
    }
    let answer = { places: [] };
    try {
      answer = await api("/places?" + new URLSearchParams({ q: text, limit: "1" }));
    } catch (error) {
      answer = { places: [] };
    }
    if (!answer.places.length) {
      setPlaceError(`Aucune commune ne correspond à « ${text} » : vérifiez l'orthographe ou saisissez un code postal.`);
      $("place").focus();
      return;
    }
    choosePlace(answer.places[0]);
  }
  go(criteriaFromForm());
}

function nearMe() {
  const button = $("near-me");
  if (!navigator.geolocation) {
    setPlaceError("Votre navigateur ne peut pas donner votre position : saisissez une commune ou un code postal.");
    return;
  }
  button.disabled = true;
  button.textContent = "Localisation…";
  $("place-status").textContent = "Recherche de votre position.";
  const done = () => {
    button.disabled = false;
    button.textContent = "Autour de moi";
  };
  navigator.geolocation.getCurrentPosition(
    (position) => {
      done();
      // Rounded to about 100 m: enough to rank psychologists, and what the address and the request carry.
      state.place = {
        label: "votre position",
        lat: Math.round(position.coords.latitude * 1e3) / 1e3,
        lon: Math.round(position.coords.longitude * 1e3) / 1e3,
      };
      $("place").value = "Ma position";
      setPlaceError("");
      go(criteriaFromForm());
    },
    () => {
      done();
      setPlaceError("Votre position n'a pas pu être obtenue (accès refusé ou indisponible) : saisissez une commune ou un code postal.");
      $("place").focus();
    },
    { timeout: 15000, maximumAge: 300000 },
  );
}

function searchMessage(error) {
  const fields = error.details.map((detail) => detail.field);
  if (error.status === 422 && (fields.includes("lat") || fields.includes("lon"))) {
    return "Ce point est hors de la zone du dispositif (France métropolitaine, Corse et départements d'outre-mer).";
  }
  if (error.status === 422 && fields.includes("name")) return "Le nom doit contenir au moins une lettre.";
  if (error.status === 0) return OFFLINE;
  return "La recherche n'a pas abouti. Réessayez dans un instant.";
}

async function loadPage(search, page, moveFocus) {
  const params = new URLSearchParams({
    lat: String(search.criteria.lat),
    lon: String(search.criteria.lon),
    radius_km: search.criteria.rayon,
    limit: String(PAGE_SIZE),
  });
  if (search.criteria.public) params.set("public", search.criteria.public);
  if (search.criteria.teleconsultation) params.set("teleconsultation", search.criteria.teleconsultation);
  if (search.criteria.langue) params.set("language", search.criteria.langue);
  if (search.criteria.nom) params.set("name", search.criteria.nom);
  if (search.cursors[page]) params.set("cursor", search.cursors[page]);
  $("search-submit").disabled = true;
  try {
    const answer = await api("/psychologists/search?" + params);
    if (state.search !== search) return;
    search.page = page;
    search.results = answer.results;
    search.cursors[page + 1] = answer.next_cursor;
    renderResults(search, moveFocus, true);
  } catch (error) {
    if (error.status === 400 && page > 0) {
      search.cursors = [null];
      return loadPage(search, 0, moveFocus);
    }
    flash(searchMessage(error), "error");
    $("results-area").hidden = true;
  } finally {
    $("search-submit").disabled = false;
  }
}

function renderResults(search, moveFocus, aloud) {
  const results = search.results;
  const area = $("results-area");
  const label = search.criteria.lieu;
  const within = `à moins de ${search.criteria.rayon} km de ${label}`;
  const first = search.page * PAGE_SIZE + 1;
  area.hidden = false;
  $("results-title").textContent = results.length
    ? `Psychologues ${within} : résultats ${first} à ${first + results.length - 1}`
    : `Aucun psychologue partenaire ${within}`;
  $("results").setAttribute("start", String(first));
  $("results").replaceChildren(
    ...results.map((result, index) =>
      el(
        "li",
        { class: "result", id: `result-${index}` },
        el("h3", { class: "result-name" }, el("a", { href: "#/psychologue/" + encodeURIComponent(result.psychologist_id) }, result.name)),
        el("p", { class: "distance" }, `À ${kilometres(result.distance_km)} — ${result.address}, ${result.postcode} ${result.city}`),
        el(
          "p",
          {},
          `Téléconsultation ${result.teleconsultation ? "proposée" : "non proposée"}. `,
          `Reçoit : ${listOf(result.publics, (p) => PUBLICS[p] || p)}. `,
          `Langues : ${listOf(result.languages, languageName)}.`,
        ),
        contactDetails(result),
      ),
    ),
  );
  if (!results.length) {
    $("results").replaceChildren(el("li", { class: "result empty" }, "Élargissez la distance ou retirez un filtre pour voir d'autres psychologues."));
  }
  const hasNext = Boolean(search.cursors[search.page + 1]);
  $("previous-page").hidden = search.page === 0;
  $("next-page").hidden = !hasNext;
  $("page-position").textContent = search.page > 0 || hasNext ? `Page ${search.page + 1}` : "";
  drawMap(search);
  if (aloud) {
    const count = results.length;
    announce(
      count
        ? `${count} psychologue${count > 1 ? "s" : ""} ${within}, page ${search.page + 1}.` +
            (hasNext ? " D'autres résultats suivent." : "")
        : `Aucun psychologue partenaire ${within}.`,
    );
  }
  if (moveFocus) $("results-title").focus();
}

function showSearch(params) {
  showView("view-search", "Trouver un psychologue");
  if (!params.has("lat") || !params.has("lon")) {
    state.search = null;
    $("results-area").hidden = true;
    focusHeading("search-title");
    return;
  }
  formFromCriteria(params);
  const key = params.toString();
  const criteria = Object.fromEntries(params.entries());
  criteria.rayon = criteria.rayon || "10";
  if (state.search && state.search.key === key) {
    // Back from a profile: the same page of results, without asking again.
    renderResults(state.search, !state.firstRoute, false);
    return;
  }
  state.search = { key, criteria, cursors: [null], page: 0, results: [] };
  loadPage(state.search, 0, false);
}

// ---------------------------------------------------------------- map (Leaflet; the list says everything it shows)

function drawMap(search) {
  const area = $("map-area");
  if (!window.L || !state.config || !state.config.tiles || !state.config.tiles.url) {
    area.hidden = true;
    return;
  }
  if (!state.map) {
    state.map = L.map("map", { zoomControl: false, scrollWheelZoom: false });
    L.control.zoom({ zoomInTitle: "Zoomer", zoomOutTitle: "Dézoomer" }).addTo(state.map);
    state.map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    L.tileLayer(state.config.tiles.url, {
      attribution: state.config.tiles.attribution,
      maxZoom: state.config.tiles.max_zoom || 19,
    })
      .on("tileerror", () => {
        if (state.tilesFailed) return;
        state.tilesFailed = true;
        $("map-note").textContent = "Le fond de carte n'a pas pu être chargé ; la liste donne toutes les informations.";
      })
      .addTo(state.map);
    state.layer = L.layerGroup().addTo(state.map);
  }
  state.map.invalidateSize();
  state.layer.clearLayers();
  const centre = [search.criteria.lat, search.criteria.lon];
  const points = [centre];
  L.circleMarker(centre, { radius: 7, className: "search-point", interactive: false }).addTo(state.layer);
  const first = search.page * PAGE_SIZE + 1;
  search.results.forEach((result, index) => {
    const number = first + index;
    const point = [result.lat, result.lon];
    points.push(point);
    const link = el("a", { href: "#/psychologue/" + encodeURIComponent(result.psychologist_id) }, result.name);
    const marker = L.marker(point, {
      icon: L.divIcon({ className: "result-marker", html: String(number), iconSize: [30, 30] }),
      title: `${number}. ${result.name}, à ${kilometres(result.distance_km)}`,
      keyboard: true,
    })
      .bindPopup(el("p", { class: "popup" }, link, el("br"), `${result.address}, ${result.city}`))
      .addTo(state.layer);
    const icon = marker.getElement();
    if (icon) icon.setAttribute("aria-label", `${number}. ${result.name}, à ${kilometres(result.distance_km)}`);
  });
  area.hidden = false;
  if (points.length > 1) state.map.fitBounds(L.latLngBounds(points), { padding: [40, 40], maxZoom: 15 });
  else state.map.setView(centre, 12);
}

// ---------------------------------------------------------------- profile

async function showProfile(id) {
  showView("view-profile", "Psychologue");
  $("back-to-search").setAttribute("href", state.search ? "#/?" + state.search.key : "#/");
  $("profile-title").textContent = "Psychologue";
  const body = $("profile-body");
  body.replaceChildren(el("p", {}, "Chargement du profil…"));
  let profile;
  try {
    profile = await api("/psychologists/" + encodeURIComponent(id));
  } catch (error) {
    $("profile-title").textContent = "Psychologue introuvable";
    document.title = "Psychologue introuvable — Mon soutien psy";
    body.replaceChildren(
      el(
        "p",
        {},
        error.status === 404
          ? "Ce psychologue ne fait pas ou plus partie de l'annuaire. Lancez une nouvelle recherche pour trouver un autre psychologue partenaire."
          : "Le profil n'a pas pu être chargé. Réessayez dans un instant.",
      ),
    );
    focusHeading("profile-title");
    return;
  }
  $("profile-title").textContent = profile.name;
  document.title = `${profile.name}, psychologue — Mon soutien psy`;
  body.replaceChildren(
    el("h2", {}, "Contact"),
    contactDetails(profile),
    el("h2", {}, "Consultations"),
    el(
      "dl",
      { class: "details" },
      el("dt", {}, "Téléconsultation"),
      el("dd", {}, profile.teleconsultation ? "Proposée" : "Non proposée"),
      el("dt", {}, "Reçoit"),
      el("dd", {}, listOf(profile.publics, (p) => PUBLICS[p] || p)),
      el("dt", {}, "Langues"),
      el("dd", {}, listOf(profile.languages, languageName)),
    ),
    el("h2", {}, profile.practices.length > 1 ? "Cabinets" : "Cabinet"),
    el(
      "ul",
      { class: "plain-list" },
      profile.practices.map((practice) => el("li", {}, practice.address, el("br"), `${practice.postcode} ${practice.city}`)),
    ),
    el("p", { class: "hint" }, "Adresse de cette page à partager : ", el("span", { class: "share" }, location.href)),
  );
  announce(`Profil de ${profile.name}.`);
  focusHeading("profile-title");
}

// ---------------------------------------------------------------- open statistics

const SUPPRESSED = { "< 11": "moins de 11", secret: "secret statistique" };

function count(value) {
  return typeof value === "number" ? integer.format(value) : SUPPRESSED[value] || String(value);
}

function departmentName(code) {
  return (state.departments && state.departments[code]) || `Département ${code}`;
}

function departmentLabel(code) {
  return `${departmentName(code)} (${code})`;
}

async function loadDepartments() {
  if (state.departments) return;
  try {
    const response = await fetch("/vendor/departements.json");
    const list = await response.json();
    state.departments = Object.fromEntries(list.map((department) => [department.code, department.nom]));
  } catch (ignored) {
    state.departments = {};
  }
}

function fillDepartments(codes) {
  // The departments the statistics list, in their order, once.
  const select = $("stats-department");
  if (select.options.length > 1) return;
  codes.forEach((code) => select.append(el("option", { value: code }, `${code} — ${departmentName(code)}`)));
}

function monthsTable(caption, months) {
  return el(
    "table",
    { class: "table stats-table" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Mois"), el("th", { scope: "col" }, "Séances"))),
    el(
      "tbody",
      {},
      months.map((row) =>
        el("tr", {}, el("th", { scope: "row" }, monthName.format(new Date(row.month + "-01T00:00:00Z"))), el("td", {}, count(row.sessions))),
      ),
    ),
  );
}

async function renderStats() {
  const year = $("stats-year").value;
  const department = $("stats-department").value;
  const body = $("stats-body");
  body.replaceChildren(el("p", {}, "Chargement des statistiques…"));
  let figures;
  try {
    figures = await api("/public/stats?" + new URLSearchParams({ year }));
  } catch (error) {
    const message =
      error.status === 404
        ? `Les statistiques de ${year} ne sont pas encore publiées : elles paraissent après le premier décompte de l'année.`
        : "Les statistiques n'ont pas pu être chargées. Réessayez dans un instant.";
    body.replaceChildren(el("p", { class: "notice" }, message));
    announce(message);
    return;
  }
  const status = figures.final ? "définitifs" : "provisoires";
  const parts = [el("p", {}, `Chiffres ${status} de ${figures.year}, arrêtés au ${formatDay(figures.as_of)}.`)];
  if (!figures.closed_months.length) {
    parts.push(el("p", {}, `Aucun mois de ${figures.year} n'est encore terminé.`));
  } else if (department) {
    const row = figures.departments.find((entry) => entry.department === department);
    parts.push(
      el("p", {}, `Psychologues ayant déclaré des séances en ${figures.year} dans ce département : `, el("strong", {}, count(row.psychologists)), "."),
      monthsTable(`Séances par mois — ${departmentLabel(department)}`, row.months),
    );
  } else {
    parts.push(monthsTable("Séances par mois — France entière", figures.months));
  }
  body.replaceChildren(...parts);
  fillDepartments(figures.departments.map((row) => row.department));
  const where = department ? departmentLabel(department) : "la France entière";
  announce(`Statistiques ${figures.year} affichées pour ${where}.`);
}

async function showStats() {
  showView("view-stats", "Statistiques");
  const years = $("stats-year");
  if (!years.options.length) {
    const current = new Date().getUTCFullYear();
    [current, current - 1, current - 2].forEach((year) => years.append(el("option", { value: String(year) }, String(year))));
  }
  await loadDepartments();
  if (!$("stats-department").options.length) $("stats-department").append(el("option", { value: "" }, "France entière"));
  focusHeading("stats-title");
  renderStats();
}

// ---------------------------------------------------------------- routing

function route() {
  clearFlash();
  const [path, query] = (location.hash || "#/").slice(1).split("?");
  if (path.startsWith("/psychologue/")) showProfile(decodeURIComponent(path.slice("/psychologue/".length)));
  else if (path === "/statistiques") showStats();
  else showSearch(new URLSearchParams(query || ""));
  state.firstRoute = false;
}

async function start() {
  LANGUAGES.map((code) => [code, languageName(code)])
    .sort((a, b) => a[1].localeCompare(b[1], "fr"))
    .forEach(([code, name]) => $("filter-language").append(el("option", { value: code }, name)));
  combobox.setup();
  $("search-form").addEventListener("submit", submitSearch);
  $("near-me").addEventListener("click", nearMe);
  $("previous-page").addEventListener("click", () => loadPage(state.search, state.search.page - 1, true));
  $("next-page").addEventListener("click", () => loadPage(state.search, state.search.page + 1, true));
  $("stats-form").addEventListener("submit", (event) => {
    event.preventDefault();
    renderStats();
  });
  try {
    state.config = await (await fetch("/config.json")).json();
  } catch (ignored) {
    state.config = {}; // no map: the list is the whole answer
  }
  window.addEventListener("hashchange", route);
  route();
}

document.addEventListener("DOMContentLoaded", start);
