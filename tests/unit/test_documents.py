from __future__ import annotations

import pytest

from infra.api_client import SAMPLE_PDF
from msp.candidatures.documents import detect_type, verdict_for
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


def test_a_renamed_executable_is_rejected_with_a_french_reason():
    assert "ni un PDF" in verdict_for(WINDOWS_EXE, 100, DocumentType.PDF, 100)


def test_declared_type_must_match_content():
    assert "ne correspond pas" in verdict_for(PNG, 100, DocumentType.PDF, 100)


def test_file_larger_than_declared_is_rejected_and_exact_file_passes():
    assert verdict_for(SAMPLE_PDF, 101, DocumentType.PDF, 100) is not None
    assert verdict_for(SAMPLE_PDF, 100, DocumentType.PDF, 100) is None
