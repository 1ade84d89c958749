"""The security headers on every answer. A module of its own, importing nothing: the OpenAPI route, which
needs only these, then loads neither Powertools nor pydantic on a cold start."""

SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains",
}
