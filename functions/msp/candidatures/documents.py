"""What an uploaded file really is: its type is read from its first and last bytes, never trusted."""

from __future__ import annotations

import re
from dataclasses import dataclass

from msp.candidatures.models import DocumentType

SNIFF_BYTES = 16
TAIL_BYTES = 1024
_PDF_HEADER = re.compile(rb"%PDF-(1\.[0-7]|2\.0)\s")
_PDF_END = b"%%EOF"


@dataclass(frozen=True)
class UploadedObject:
    """One version of an uploaded object as inspected: what is copied is exactly this version, never a later
    upload under the same key. `version` is the bucket's version id (None when the bucket keeps none)."""

    head: bytes
    tail: bytes
    size: int
    etag: str
    version: str | None


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


def verdict_for(upload: UploadedObject, declared_type: DocumentType, declared_size: int) -> str | None:
    """None when the file is acceptable, otherwise the reason (in French, shown to the psychologist)."""
    actual = detect_type(upload.head)
    if actual is None:
        return "Le fichier n'est ni un PDF, ni une image JPEG ou PNG."
    if actual != declared_type:
        return f"Le contenu du fichier ({actual.value}) ne correspond pas au type annoncé ({declared_type.value})."
    if actual is DocumentType.PDF and not _PDF_HEADER.match(upload.head):
        return "L'en-tête du PDF est illisible : le fichier n'est pas un PDF valide."
    if actual is DocumentType.PDF and _PDF_END not in upload.tail:
        return "Le PDF est incomplet ou endommagé : sa fin (%%EOF) est absente."
    if upload.size > declared_size:
        return "Le fichier est plus volumineux que la taille annoncée."
    return None
