"""E-mails to the psychologist about each review decision, in French, with the reviewer's reason."""

from __future__ import annotations

from typing import Protocol

from msp.candidatures.models import AuditEvent, Candidature, DecisionEvent, EmailMessage
from msp.candidatures.ports import CandidatureRepository
from msp.errors import NotFound

SIGNATURE = (
    "Cordialement,\n"
    "L'équipe Mon soutien psy\n\n"
    "Ce message est envoyé automatiquement : merci de ne pas y répondre. "
    "Pour toute question, rendez-vous dans votre espace psychologue."
)

SUBJECTS = {
    "request_info": "Mon soutien psy : des informations complémentaires sont nécessaires",
    "accept": "Mon soutien psy : votre candidature est acceptée",
    "reject": "Mon soutien psy : votre candidature n'a pas été retenue",
    "deconvention": "Mon soutien psy : fin de votre conventionnement",
}


class Mailer(Protocol):
    def send(self, message: EmailMessage) -> None: ...


def _salutation(candidature: Candidature) -> str:
    fields = candidature.fields
    title = {"mme": "Madame", "m": "Monsieur"}.get(fields.civility or "")
    if title and fields.last_name:
        return f"Bonjour {title} {fields.last_name},"
    return "Bonjour,"


def _quoted(reason: str | None) -> str:
    return "\n".join(f"    {line}" for line in (reason or "").strip().splitlines())


def decision_email(candidature: Candidature, decision: AuditEvent) -> EmailMessage:
    """The message for one decision; the reason is quoted as the reviewer wrote it."""
    reference = f"{candidature.id}-v{decision.version}"
    if decision.action == "request_info":
        middle = (
            "L'instructeur de votre candidature au dispositif Mon soutien psy a besoin d'informations "
            "complémentaires avant de pouvoir décider :\n\n"
            f"{_quoted(decision.reason)}\n\n"
            "Vous pouvez dès maintenant modifier votre candidature dans votre espace psychologue, "
            "puis la soumettre à nouveau : elle reviendra alors dans la file d'instruction."
        )
    elif decision.action == "accept":
        middle = (
            "Nous avons le plaisir de vous informer que votre candidature au dispositif Mon soutien psy "
            "est acceptée. Vous êtes désormais conventionné·e : vos cabinets apparaissent dans "
            "l'annuaire des psychologues partenaires et vous pouvez déclarer les séances que vous réalisez "
            "dans le cadre du dispositif."
        )
        if decision.reason:
            middle += f"\n\nMessage de l'instructeur :\n\n{_quoted(decision.reason)}"
    elif decision.action == "reject":
        middle = (
            "Après examen, votre candidature au dispositif Mon soutien psy n'a pas été retenue, "
            "pour le motif suivant :\n\n"
            f"{_quoted(decision.reason)}\n\n"
            "Si votre situation évolue, vous pourrez déposer une nouvelle candidature."
        )
    elif decision.action == "deconvention":
        middle = (
            "Nous vous informons que votre conventionnement au dispositif Mon soutien psy prend fin, "
            "pour le motif suivant :\n\n"
            f"{_quoted(decision.reason)}\n\n"
            "Vos cabinets ne figurent plus dans l'annuaire et vous ne pouvez plus déclarer de séances "
            "au titre du dispositif."
        )
    else:
        raise ValueError(f"no e-mail for action {decision.action!r}")
    body = (
        f"{_salutation(candidature)}\n\n{middle}\n\nRéférence de votre candidature : {candidature.id}\n\n{SIGNATURE}\n"
    )
    if not candidature.fields.email:
        raise ValueError("the candidature has no e-mail address")
    return EmailMessage(to=candidature.fields.email, subject=SUBJECTS[decision.action], body=body, reference=reference)


def notify_decision(store: CandidatureRepository, mailer: Mailer, event: DecisionEvent) -> bool:
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
    message = decision_email(candidature, decision)
    if not store.claim_notification(event.candidature_id, event.version):
        return False
    try:
        mailer.send(message)
    except Exception:
        store.release_notification(event.candidature_id, event.version)
        raise
    return True
