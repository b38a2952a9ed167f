"""Credentials kept out of what cachegate shows: settings, error messages, ``/health``, logs.

:func:`redact_url` hides the password of a ``scheme://user:password@host`` URL; :func:`scrub` hides it in
every URL a value holds (dicts, lists, URLs inside text), and the values of secret-looking query parameters
(``?key=``, ``?token=``...) too: error messages name the URL they failed on.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit


def redact_url(url: str) -> str:
    """Hide the password of ``scheme://user:password@host`` URLs; other URLs are returned as they are."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:<redacted>@{parts.netloc.rpartition('@')[2]}"
    return parts._replace(netloc=netloc).geturl()


#: query parameters whose value is hidden by :func:`scrub` (``?key=``, ``?api_key=``, ``?token=``, ``?sig=`` …)
_SECRET_WORDS = ("key", "token", "secret", "password", "passwd", "auth", "signature", "sig")
#: a URL inside a text (an error message): a scheme, ``://`` and everything up to a space or a quote
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def _scrub_url(url: str) -> str:
    try:
        url = redact_url(url)
        parts = urlsplit(url)
    except ValueError:
        return "<redacted>"
    if parts.query:
        query = [(k, "<redacted>" if any(w in k.lower() for w in _SECRET_WORDS) else v)
                 for k, v in parse_qsl(parts.query, keep_blank_values=True)]
        url = parts._replace(query=urlencode(query, safe="<>")).geturl()
    return url


def scrub(value: Any) -> Any:
    """``value`` with credentials hidden in every URL it holds (``user:pw@`` and secret-looking query
    parameters), in dicts and lists too, and in URLs inside text: error messages name the URL they failed
    on, and they reach ``/health``, error bodies and logs."""
    if isinstance(value, dict):
        return {k: scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return _URL_IN_TEXT.sub(lambda match: _scrub_url(match.group()), value)
    return value
