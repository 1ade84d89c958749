from __future__ import annotations

import pytest

from infra.api_client import SAMPLE_PDF
from msp.candidatures.documents import UploadedObject, detect_type, verdict_for
from msp.candidatures.models import DocumentType

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"
ELF = b"\x7fELF\x02\x01\x01\x00"
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00"


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (SAMPLE_PDF, DocumentType.PDF),
        (PNG, DocumentType.PNG),
        (JPEG, DocumentType.JPEG),
        (ELF, None),
        (WINDOWS_EXE, None),
        (b"", None),
        (b"PDF-1.4", None),
        (b"<html>", None),
    ],
)
def test_type_is_read_from_magic_bytes(head, expected):
    assert detect_type(head) == expected


def uploaded(body: bytes, size: int | None = None) -> UploadedObject:
    return UploadedObject(body[:16], body[-1024:], len(body) if size is None else size, '"etag"', "v1")


def test_a_renamed_executable_is_rejected_with_a_french_reason():
    assert "ni un PDF" in verdict_for(uploaded(WINDOWS_EXE, 100), DocumentType.PDF, 100)


def test_declared_type_must_match_content():
    assert "ne correspond pas" in verdict_for(uploaded(PNG, 100), DocumentType.PDF, 100)


def test_file_larger_than_declared_is_rejected_and_exact_file_passes():
    assert verdict_for(uploaded(SAMPLE_PDF, 101), DocumentType.PDF, 100) is not None
    assert verdict_for(uploaded(SAMPLE_PDF, 100), DocumentType.PDF, 100) is None


@pytest.mark.parametrize("header", [b"%PDF-\x00\xff\n", b"%PDF-9.9\n", b"%PDF-1.\n", b"%PDF-1.4<script>", b"%PDF-"])
def test_a_pdf_whose_header_does_not_parse_is_rejected(header):
    body = header + SAMPLE_PDF[len(b"%PDF-1.4\n") :]
    assert "en-tête du PDF" in verdict_for(uploaded(body), DocumentType.PDF, len(body))


@pytest.mark.parametrize("header", [b"%PDF-1.0\n", b"%PDF-1.7\r\n", b"%PDF-2.0\r"])
def test_every_published_pdf_version_header_passes(header):
    body = header + SAMPLE_PDF[len(b"%PDF-1.4\n") :]
    assert verdict_for(uploaded(body), DocumentType.PDF, len(body)) is None


def test_a_pdf_without_its_end_marker_in_the_last_kilobyte_is_rejected():
    truncated = SAMPLE_PDF[:-7]
    assert "%%EOF" in verdict_for(uploaded(truncated), DocumentType.PDF, len(truncated))
    padded = SAMPLE_PDF + b" " * 1024  # the marker pushed out of the tail that is read
    assert "%%EOF" in verdict_for(uploaded(padded), DocumentType.PDF, len(padded))
    trailing = SAMPLE_PDF + b"\n" * 100  # whitespace after the marker, as some writers leave, still passes
    assert verdict_for(uploaded(trailing), DocumentType.PDF, len(trailing)) is None


def test_images_are_not_asked_for_a_pdf_end_marker():
    assert verdict_for(uploaded(PNG), DocumentType.PNG, len(PNG)) is None
