"""E-mails to the psychologist about each review decision, in French, with the reviewer's reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from msp.candidatures.models import AuditEvent, Candidature, DecisionEvent, Document, EmailMessage, QueueEntry
from msp.candidatures.ports import CandidatureRepository
from msp.errors import NotFound

SIGNATURE = (
    "Cordialement,\n"
    "L'équipe Mon soutien psy\n\n"
    "Ce message est envoyé automatiquement : merci de ne pas y répondre. "
    "Pour toute question, rendez-vous dans votre espace psychologue."
)

SUBJECTS = {
    "submit": "Mon soutien psy : nous avons bien reçu votre candidature",
    "resign": "Mon soutien psy : un psychologue conventionné met fin à son conventionnement",
    "request_info": "Mon soutien psy : des informations complémentaires sont nécessaires",
    "accept": "Mon soutien psy : votre candidature est acceptée",
    "reject": "Mon soutien psy : votre candidature n'a pas été retenue",
    "deconvention": "Mon soutien psy : fin de votre conventionnement",
}


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


class DigestSource(Protocol):
    def submitted_between(self, start: str, end: str) -> list[QueueEntry]: ...

    def claim_digest(self, reference: str) -> bool: ...

    def release_digest(self, reference: str) -> None: ...


def _salutation(candidature: Candidature) -> str:
    fields = candidature.fields
    title = {"mme": "Madame", "m": "Monsieur"}.get(fields.civility or "")
    if title and fields.last_name:
        return f"Bonjour {title} {fields.last_name},"
    return "Bonjour,"


def _quoted(reason: str | None) -> str:
    return "\n".join(f"    {line}" for line in (reason or "").strip().splitlines())


def _french_date(day: dt.date) -> str:
    return day.strftime("%d/%m/%Y")


DEPARTMENT_PLACEHOLDER = "{department}"


def reviewers_of(reviewers: str, department: str | None) -> str:
    """The mailbox of a department's reviewers: `reviewers` with `{department}` replaced by the department code
    (one mailbox per department), or `reviewers` itself when it names one mailbox for all."""
    return reviewers.replace(DEPARTMENT_PLACEHOLDER, (department or "").lower())


def _resignation_email(candidature: Candidature, decision: AuditEvent, reviewers: str) -> EmailMessage:
    """The reviewers' notice of a resignation: who, from when, and why if they said."""
    fields = candidature.fields
    name = " ".join(part for part in (fields.first_name, fields.last_name) if part) or "(sans nom)"
    effective = decision.effective_date or dt.date.fromisoformat(decision.at[:10])
    body = (
        "Bonjour,\n\n"
        f"{name} (département {candidature.department}) met fin à son conventionnement au dispositif "
        f"Mon soutien psy à compter du {_french_date(effective)} : ses cabinets quittent "
        "l'annuaire ce jour-là et ses séances datées après ne sont plus acceptées.\n\n"
        + (f"Motif indiqué :\n\n{_quoted(decision.reason)}\n\n" if decision.reason else "")
        + f"Référence de la candidature : {candidature.id}\n\n{SIGNATURE}\n"
    )
    return EmailMessage(
        to=reviewers_of(reviewers, candidature.department),
        subject=SUBJECTS["resign"],
        body=body,
        reference=f"{candidature.id}-v{decision.version}",
    )


def _submitted(_: AuditEvent) -> str:
    return (
        "Nous avons bien reçu votre candidature au dispositif Mon soutien psy. Un instructeur de votre "
        "département va l'examiner ; vous recevrez un message à chaque étape. Vous pouvez suivre son état "
        "dans votre espace psychologue."
    )


def _info_requested(decision: AuditEvent) -> str:
    return (
        "L'instructeur de votre candidature au dispositif Mon soutien psy a besoin d'informations "
        "complémentaires avant de pouvoir décider :\n\n"
        f"{_quoted(decision.reason)}\n\n"
        "Vous pouvez dès maintenant modifier votre candidature dans votre espace psychologue, "
        "puis la soumettre à nouveau : elle reviendra alors dans la file d'instruction."
    )


def _accepted(decision: AuditEvent) -> str:
    middle = (
        "Nous avons le plaisir de vous informer que votre candidature au dispositif Mon soutien psy "
        "est acceptée. Vous êtes désormais conventionné·e : vos cabinets apparaissent dans "
        "l'annuaire des psychologues partenaires et vous pouvez déclarer les séances que vous réalisez "
        "dans le cadre du dispositif."
    )
    if decision.reason:
        middle += f"\n\nMessage de l'instructeur :\n\n{_quoted(decision.reason)}"
    return middle


def _rejected(decision: AuditEvent) -> str:
    return (
        "Après examen, votre candidature au dispositif Mon soutien psy n'a pas été retenue, "
        "pour le motif suivant :\n\n"
        f"{_quoted(decision.reason)}\n\n"
        "Si votre situation évolue, vous pourrez déposer une nouvelle candidature."
    )


def _deconventioned(decision: AuditEvent) -> str:
    when = f"le {_french_date(decision.effective_date)}" if decision.effective_date else "dès aujourd'hui"
    return (
        f"Nous vous informons que votre conventionnement au dispositif Mon soutien psy prend fin {when}, "
        "pour le motif suivant :\n\n"
        f"{_quoted(decision.reason)}\n\n"
        "Vos cabinets quittent alors l'annuaire et vous ne pouvez plus déclarer de séances datées "
        "après cette date au titre du dispositif."
    )


# The heart of each message to the psychologist, by action.
_MIDDLES = {
    "submit": _submitted,
    "request_info": _info_requested,
    "accept": _accepted,
    "reject": _rejected,
    "deconvention": _deconventioned,
}


def decision_email(candidature: Candidature, decision: AuditEvent, reviewers: str = "") -> EmailMessage:
    """The message for one decision; the reason is quoted as the reviewer wrote it. A resignation is told to
    the reviewers' mailbox (`reviewers`), everything else to the psychologist."""
    reference = f"{candidature.id}-v{decision.version}"
    if decision.action == "resign":
        if not reviewers:
            raise ValueError("no reviewers' mailbox to tell of a resignation")
        return _resignation_email(candidature, decision, reviewers)
    if decision.action not in _MIDDLES:
        raise ValueError(f"no e-mail for action {decision.action!r}")
    middle = _MIDDLES[decision.action](decision)
    body = (
        f"{_salutation(candidature)}\n\n{middle}\n\nRéférence de votre candidature : {candidature.id}\n\n{SIGNATURE}\n"
    )
    if not candidature.fields.email:
        raise ValueError("the candidature has no e-mail address")
    return EmailMessage(to=candidature.fields.email, subject=SUBJECTS[decision.action], body=body, reference=reference)


def notify_decision(store: CandidatureRepository, mailer: Mailer, event: DecisionEvent, reviewers: str = "") -> bool:
    """Send the e-mail of one decision once; False when there is nothing (more) to send.

    EventBridge may deliver an event twice: a marker item claimed before sending makes the
    second delivery a no-op; a failed send releases it so the retry sends the message.
    """
    try:
        candidature = store.get(event.candidature_id)
    except NotFound:
        return False
    decision = store.audit_event(event.candidature_id, event.version)
    if decision is None or decision.action not in SUBJECTS:
        return False
    message = decision_email(candidature, decision, reviewers)
    if not store.claim_notification(event.candidature_id, event.version):
        return False
    try:
        mailer.send(message)
    except Exception:
        store.release_notification(event.candidature_id, event.version)
        raise
    return True


def document_rejected_email(candidature: Candidature, document: Document) -> EmailMessage:
    """Tells the psychologist an uploaded file was refused, and why, so they send another."""
    kinds = {"diploma": "votre diplôme", "identity": "votre pièce d'identité", "identifier_proof": "votre justificatif"}
    body = (
        f"{_salutation(candidature)}\n\n"
        f"Le fichier envoyé pour {kinds.get(document.kind.value, 'un document')} n'a pas pu être accepté :\n\n"
        f"{_quoted(document.reason)}\n\n"
        "Vous pouvez en envoyer un autre (PDF, JPEG ou PNG, 10 Mo au plus) depuis votre espace psychologue.\n\n"
        f"Référence de votre candidature : {candidature.id}\n\n{SIGNATURE}\n"
    )
    if not candidature.fields.email:
        raise ValueError("the candidature has no e-mail address")
    return EmailMessage(
        to=candidature.fields.email,
        subject="Mon soutien psy : un document de votre candidature n'a pas été accepté",
        body=body,
        reference=f"{candidature.id}-document-{document.document_id}",
    )


def _digest_section(department: str, entries: list[QueueEntry]) -> str:
    lines = [
        f"  - {' '.join(p for p in (e.first_name, e.last_name) if p) or '(sans nom)'}"
        f", {e.city or ''} ({e.postcode or ''}) : {e.id}"
        for e in sorted(entries, key=lambda e: e.submitted_at)
    ]
    return f"Département {department} ({len(entries)}) :\n" + "\n".join(lines)


def digest_emails(day: dt.date, entries: Iterable[QueueEntry], reviewers: str) -> list[tuple[EmailMessage, int]]:
    """The reviewers' daily digest of the candidatures submitted on `day`, by department, each message with the
    number it lists: one per department when `reviewers` has a `{department}` placeholder, one for all
    otherwise; none when none came."""
    by_department: dict[str, list[QueueEntry]] = {}
    for entry in entries:
        by_department.setdefault(entry.department, []).append(entry)
    if DEPARTMENT_PLACEHOLDER in reviewers:
        groups = [(department, {department: found}) for department, found in sorted(by_department.items())]
    else:
        groups = [("all", by_department)] if by_department else []
    return [
        (_digest(day, scope, found, reviewers_of(reviewers, scope)), sum(map(len, found.values())))
        for scope, found in groups
    ]


def _digest(day: dt.date, scope: str, by_department: dict[str, list[QueueEntry]], to: str) -> EmailMessage:
    sections = [_digest_section(department, found) for department, found in sorted(by_department.items())]
    total = sum(len(found) for found in by_department.values())
    body = (
        "Bonjour,\n\n"
        f"{total} candidature(s) ont été soumises le {_french_date(day)} et attendent une instruction :\n\n"
        + "\n\n".join(sections)
        + f"\n\nElles figurent dans la file d'instruction de la page des instructeurs.\n\n{SIGNATURE}\n"
    )
    return EmailMessage(
        to=to,
        subject=f"Mon soutien psy : {total} nouvelle(s) candidature(s) du {_french_date(day)}",
        body=body,
        reference=f"digest-{day.isoformat()}-{scope.lower()}",
    )


def send_daily_digest(source: DigestSource, mailer: Mailer, day: dt.date, reviewers: str) -> int:
    """E-mail the reviewers the candidatures submitted on `day` (Paris) that still wait; the number listed.

    Each message once: a marker claimed before sending it, released when the send fails so the retry sends it."""
    from msp.clock import PROGRAMME_TIMEZONE, iso

    start = dt.datetime.combine(day, dt.time(), PROGRAMME_TIMEZONE)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), PROGRAMME_TIMEZONE)
    listed = 0
    for message, count in digest_emails(day, source.submitted_between(iso(start), iso(end)), reviewers):
        if not source.claim_digest(message.reference):
            continue
        try:
            mailer.send(message)
        except Exception:
            source.release_digest(message.reference)
            raise
        listed += count
    return listed
