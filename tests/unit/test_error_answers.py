"""Every domain error has its HTTP answer, and the answers keep the codes clients rely on."""

from __future__ import annotations

import inspect

import pytest

from msp import errors
from msp.http_errors import ERROR_ANSWERS, answer_for

DOMAIN_ERRORS = [
    cls
    for _, cls in inspect.getmembers(errors, inspect.isclass)
    if issubclass(cls, errors.DomainError) and cls is not errors.DomainError
]


@pytest.mark.parametrize("error", DOMAIN_ERRORS, ids=lambda cls: cls.__name__)
def test_every_domain_error_answers_a_4xx_or_a_503_with_a_code(error):
    answer = answer_for(error("message"))
    assert 400 <= answer.status < 500 or answer.status == 503
    assert answer.code and answer.code == answer.code.lower()


def test_the_table_names_only_domain_errors_and_a_retry_after_where_retrying_helps():
    assert all(issubclass(kind, errors.DomainError) for kind in ERROR_ANSWERS)
    assert answer_for(errors.StorageBusy("busy")).headers == {"Retry-After": "2"}
    assert answer_for(errors.RequestInProgress("wait")).headers == {"Retry-After": "1"}
    assert answer_for(errors.NoTally("none")) == (404, "no_tally", {})
    assert answer_for(errors.LookupLimitReached("tomorrow")) == (429, "lookup_limit_reached", {})
    assert errors.LookupLimitReached("tomorrow").retry_after_seconds == 86_400  # the route sets the real delay
