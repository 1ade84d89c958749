"""Demo data for `make run`: made-up psychologists (example.fr addresses, invented identifiers)."""

from __future__ import annotations

from typing import Any

from infra.api_client import SAMPLE_PDF, ApiClient


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
]


def demo_fields(index: int) -> dict[str, Any]:
    first, last, civility, address, postcode, city, department, lat, lon = DEMO_PRACTICES[index]
    slug = f"{first}.{last}".lower().replace("è", "e").replace("é", "e").replace("ï", "i")
    return {
        "civility": civility,
        "first_name": first,
        "last_name": last,
        "email": f"{slug}@example.fr",
        "phone": f"+3361234567{index}",
        "identifier": {"type": "rpps", "value": rpps_with_key(f"100000{index:04d}")},
        "diploma": {"university": "Université de démonstration", "year": 2010 + index},
        "experience_years": 5 + index,
        "practices": [
            {"address": address, "postcode": postcode, "city": city, "department": department, "lat": lat, "lon": lon}
        ],
        "languages": ["fr", "en"],
        "publics": ["adultes", "adolescents"],
        "teleconsultation": index % 2 == 0,
        "website": f"https://cabinet-{last.lower()}.example.fr",
    }


def load_demo_data(stack) -> str:
    """Create one draft and submitted candidatures; already loaded data is left as it is."""
    client = ApiClient(stack.base_url, stack.issuer)
    created = 0
    for index in range(len(DEMO_PRACTICES)):
        token = client.token("psychologist", sub=f"demo-psychologist-{index}")
        response = client.create_candidature(token, demo_fields(index), key=f"demo-candidature-{index}")
        if response.status_code == 409:
            continue
        response.raise_for_status()
        created += 1
        candidature_id = response.json()["id"]
        if index == 0:
            continue  # one stays a draft
        for kind in ("diploma", "identity", "identifier_proof"):
            upload = client.upload_document(token, candidature_id, kind, SAMPLE_PDF)
            stack.notifier.deliver_pending()
            client.wait_document(token, candidature_id, upload["document_id"])
        client.call("POST", f"/v1/candidatures/{candidature_id}/submit", token=token).raise_for_status()
    if created == 0:
        return "Demo data already loaded."
    return f"Loaded {created} demo candidatures (1 draft, {created - 1} submitted)."
