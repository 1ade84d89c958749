"""Demo data for `make run`: made-up psychologists (example.fr addresses, invented identifiers)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from infra.api_client import SAMPLE_PDF, ApiClient

DOCUMENT_KINDS = ("diploma", "identity", "identifier_proof")


def rpps_with_key(body: str) -> str:
    """Append the Luhn check digit to 10 digits, making a well-formed (invented) RPPS number."""
    for key in "0123456789":
        candidate = body + key
        total = 0
        for index, char in enumerate(reversed(candidate)):
            value = int(char) * (2 if index % 2 else 1)
            total += value - 9 if value > 9 else value
        if total % 10 == 0:
            return candidate
    raise AssertionError("unreachable: one key digit always fits")


DEMO_PRACTICES = [
    ("Camille", "Martin", "mme", "10 rue de Rivoli", "75004", "Paris", "75", 48.8556, 2.3580),
    ("Lucas", "Bernard", "m", "5 avenue Jean Jaurès", "92130", "Issy-les-Moulineaux", "92", 48.8250, 2.2700),
    ("Inès", "Petit", "mme", "12 cours Julien", "13006", "Marseille", "13", 43.2930, 5.3840),
    ("Hugo", "Durand", "m", "3 rue Fesch", "20000", "Ajaccio", "2A", 41.9270, 8.7370),
    ("Léa", "Moreau", "mme", "8 rue Schœlcher", "97110", "Pointe-à-Pitre", "971", 16.2410, -61.5330),
    ("Nathan", "Lefèvre", "m", "21 rue de la République", "69002", "Lyon", "69", 45.7600, 4.8350),
    ("Manon", "Garcia", "mme", "4 cours de l'Intendance", "33000", "Bordeaux", "33", 44.8420, -0.5770),
    ("Jules", "Roux", "m", "15 rue Nationale", "59800", "Lille", "59", 50.6330, 3.0600),
    ("Chloé", "Fournier", "mme", "2 quai de la Fosse", "44000", "Nantes", "44", 47.2120, -1.5620),
    ("Louis", "Girard", "m", "9 place Kléber", "67000", "Strasbourg", "67", 48.5840, 7.7460),
    ("Emma", "Bonnet", "mme", "30 allées Jean Jaurès", "31000", "Toulouse", "31", 43.6080, 1.4490),
    ("Adam", "Lambert", "m", "6 rue de Paris", "75011", "Paris", "75", 48.8590, 2.3800),
    ("Zoé", "Faure", "mme", "11 rue Saint-Ferréol", "13001", "Marseille", "13", 43.2950, 5.3780),
    ("Sarah", "Chevalier", "mme", "7 place Jean Jaurès", "42000", "Saint-Étienne", "42", 45.4410, 4.3870),
    ("Théo", "Perrin", "m", "3 rue Michelet", "42100", "Saint-Étienne", "42", 45.4330, 4.3900),
]

# Where each demo candidature ends up, by index: the first stays a draft, the others are
# submitted, and a demo admin moves a few further so the admin page shows every kind of line.
DEMO_REVIEW: dict[int, list[Any]] = {
    1: ["start_review"],
    2: ["start_review", ("request_info", "Merci de joindre l'attestation de diplôme complète (recto verso).")],
    5: ["start_review", "accept"],
    6: ["start_review", ("reject", "Le master de psychologie n'est pas encore obtenu.")],
    7: ["start_review", "accept"],
    9: ["start_review", "accept"],
    # Listed in Paris and Marseille too, so a search there finds someone.
    11: ["start_review", "accept"],
    12: ["start_review", "accept"],
    # And in Saint-Étienne, so the public page's "st etienne" finds two.
    13: ["start_review", "accept"],
    14: ["start_review", "accept"],
}
DEMO_REVIEWER_DEPARTMENTS = "75,92,13"


def _ascii(text: str) -> str:
    import unicodedata

    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().replace("'", "")


def fields_for(
    first: str,
    last: str,
    civility: str,
    address: str,
    postcode: str,
    city: str,
    department: str,
    lat: float,
    lon: float,
    *,
    index: int = 0,
) -> dict[str, Any]:
    slug = f"{_ascii(first)}.{_ascii(last)}".lower()
    return {
        "civility": civility,
        "first_name": first,
        "last_name": last,
        "email": f"{slug}@example.fr",
        "phone": f"+336123456{index % 100:02d}",
        "identifier": {"type": "rpps", "value": rpps_with_key(f"100000{index:04d}")},
        "diploma": {"university": "Université de démonstration", "year": 2010 + index % 12},
        "experience_years": 5 + index,
        "practices": [
            {"address": address, "postcode": postcode, "city": city, "department": department, "lat": lat, "lon": lon}
        ],
        "languages": ["fr", "en"],
        "publics": ["adultes", "adolescents"],
        "teleconsultation": index % 2 == 0,
        "website": f"https://cabinet-{_ascii(last).lower()}.example.fr",
        "public_email": f"contact.{slug}@example.fr",
        "public_phone": f"+331234567{index % 100:02d}",
    }


def demo_fields(index: int) -> dict[str, Any]:
    return fields_for(*DEMO_PRACTICES[index], index=index)


def practice_in(department: str) -> dict[str, Any]:
    """A valid practice in `department`: a demo address, or an invented one in metropolitan France."""
    for _, _, _, address, postcode, city, code, lat, lon in DEMO_PRACTICES:
        if code == department:
            return {"address": address, "postcode": postcode, "city": city, "department": code, "lat": lat, "lon": lon}
    if not department.isdigit() or len(department) != 2:
        raise KeyError(f"no demo practice in department {department}")
    return {
        "address": "1 place de la Mairie",
        "postcode": f"{department}100",
        "city": "Commune de démonstration",
        "department": department,
        "lat": 46.8 + int(department) / 100,
        "lon": 2.4 + int(department) / 100,
    }


def submit_with_documents(client: ApiClient, stack, token: str, candidature_id: str) -> None:
    """Upload the three documents, let the bucket trigger verify them, then submit."""
    # One at a time: a verdict bumps the candidature's version, which a concurrent upload
    # request (conditional on the version it read) would then lose with 412.
    for kind in DOCUMENT_KINDS:
        upload = client.upload_document(token, candidature_id, kind, SAMPLE_PDF)
        stack.notifier.deliver_pending()
        client.wait_document(token, candidature_id, upload["document_id"])
    client.call("POST", f"/v1/candidatures/{candidature_id}/submit", token=token).raise_for_status()


def review(client: ApiClient, token: str, candidature_id: str, steps: list) -> None:
    for step in steps:
        action, reason = (step, None) if isinstance(step, str) else step
        version = client.call("GET", f"/v1/candidatures/{candidature_id}", token=token).json()["version"]
        client.call(
            "POST",
            f"/v1/candidatures/{candidature_id}/transitions",
            token=token,
            json={"action": action, "reason": reason, "expected_version": version},
        ).raise_for_status()


def load_demo_data(stack) -> str:
    """Create demo candidatures in several departments; already loaded data is left as it is."""
    client = ApiClient(stack.base_url, stack.issuer)
    admin = client.token("admin", sub="demo-admin")
    created = 0
    for index in range(len(DEMO_PRACTICES)):
        token = client.token("psychologist", sub=f"demo-psychologist-{index}")
        response = client.create_candidature(token, demo_fields(index), key=f"demo-candidature-{index}")
        if response.status_code == 409:
            continue
        response.raise_for_status()
        candidature = response.json()
        # A replayed Idempotency-Key answers with the first result: only a fresh draft is new.
        current = client.call("GET", f"/v1/candidatures/{candidature['id']}", token=token).json()
        if current["status"] != "draft" or current["documents"]:
            continue
        created += 1
        if index == 0:
            continue  # one stays a draft
        submit_with_documents(client, stack, token, candidature["id"])
        review(client, admin, candidature["id"], DEMO_REVIEW.get(index, []))
    if created:
        _after_acceptance(client, stack)
    stack.events.wait_idle()
    if created == 0:
        return "Demo data already loaded."
    return (
        f"Loaded {created} demo candidatures in {len({p[6] for p in DEMO_PRACTICES})} departments "
        f"(1 draft, the others submitted, {len(DEMO_REVIEW)} of them further reviewed; one refused psychologist "
        f"applied again, one listed psychologist takes no new patients for a month)."
    )


def _after_acceptance(client: ApiClient, stack) -> None:
    """The second life the admin page and the search show: the refused psychologist (6) applies again with the
    same identifier (the new candidature links the refused one), and a listed one (9) is full for a month.
    Done once: a second load finds both done and leaves them."""
    again = client.token("psychologist", sub="demo-psychologist-6")
    response = client.create_candidature(again, demo_fields(6), key="demo-candidature-6-again")
    response.raise_for_status()
    # A replayed Idempotency-Key answers with the first result: the candidature as it is now says what is left.
    current = client.call("GET", f"/v1/candidatures/{response.json()['id']}", token=again).json()
    if current["status"] == "draft" and not current["documents"]:
        submit_with_documents(client, stack, again, current["id"])
    full = client.token("psychologist", sub="demo-psychologist-9")
    listing = client.call("GET", "/v1/me/listing", token=full).json()
    if not listing["accepting_new_patients"]:
        return
    until = (dt.date.today() + dt.timedelta(days=30)).isoformat()
    client.call(
        "PATCH",
        "/v1/me/listing",
        token=full,
        json={"accepting_new_patients": False, "full_until": until},
        headers={"If-Match": str(listing["version"])},
    ).raise_for_status()
