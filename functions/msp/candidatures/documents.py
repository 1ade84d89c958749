"""What an uploaded file really is: its type is read from its first bytes, never trusted."""

from __future__ import annotations

from msp.candidatures.models import DocumentType

SNIFF_BYTES = 16

_SIGNATURES: tuple[tuple[bytes, DocumentType], ...] = (
    (b"%PDF-", DocumentType.PDF),
    (b"\xff\xd8\xff", DocumentType.JPEG),
    (b"\x89PNG\r\n\x1a\n", DocumentType.PNG),
)


def detect_type(head: bytes) -> DocumentType | None:
    for signature, document_type in _SIGNATURES:
        if head.startswith(signature):
            return document_type
    return None


def verdict_for(head: bytes, size: int, declared_type: DocumentType, declared_size: int) -> str | None:
    """None when the file is acceptable, otherwise the reason (in French, shown to the psychologist)."""
    actual = detect_type(head)
    if actual is None:
        return "Le fichier n'est ni un PDF, ni une image JPEG ou PNG."
    if actual != declared_type:
        return f"Le contenu du fichier ({actual.value}) ne correspond pas au type annoncé ({declared_type.value})."
    if size > declared_size:
        return "Le fichier est plus volumineux que la taille annoncée."
    return None
