"""Copy a published weight file from its address (``http(s)://``, ``file://`` or a path).

Every failure is one :class:`~stembench.errors.ModelError` line that says what to do. The bytes
written are the file's own: the file is asked for without content encoding, and when a server
or proxy compresses it anyway the decoded bytes are written (the caller's size and hash pins
decide whether the file is whole; a compressed ``Content-Length`` is not compared with them).
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

from stembench.errors import ModelError

__all__ = ["DEFAULT_TOTAL_TIMEOUT_S", "copy_source"]

#: Seconds a whole download may take (the per-read timeout alone does not bound it).
DEFAULT_TOTAL_TIMEOUT_S = 1800.0
_CHUNK = 1 << 16
_MIRROR_HINT = "or fetch from a mirror with --mirror or STEMBENCH_WEIGHTS_MIRROR"


def _status_line(source: str, response: Any) -> str:
    """One line for a non-200 answer; a 429 says when to retry."""
    line = f"{source} answered HTTP {response.status_code}"
    if response.status_code == 429:
        wait = response.headers.get("Retry-After")
        when = f"after {wait} s" if wait and wait.isdigit() else "later"
        line += (f" (too many requests: GitHub limits downloads without login); try again "
                 f"{when}, {_MIRROR_HINT}")
    return line


def _connection_line(source: str, exc: Exception) -> str:
    """One line for a failed connection; SSL and proxy failures name the variables to set."""
    import requests

    if isinstance(exc, requests.exceptions.SSLError):
        return (f"cannot reach {source}: the HTTPS certificate could not be verified "
                "(SSLError); behind a proxy that re-signs HTTPS, set REQUESTS_CA_BUNDLE to its "
                "CA certificate file")
    if isinstance(exc, requests.exceptions.ProxyError):
        return (f"cannot reach {source} through the proxy (ProxyError); check HTTPS_PROXY "
                "(and NO_PROXY)")
    return f"cannot reach {source}: {type(exc).__name__}; {_MIRROR_HINT}"


def _copy_http(source: str, out: Any, timeout_s: float, total_timeout_s: float) -> int:
    import requests

    written = 0
    start = time.monotonic()
    try:
        with requests.get(source, stream=True, timeout=timeout_s,
                          headers={"Accept-Encoding": "identity"}) as response:
            if response.status_code != 200:
                raise ModelError(_status_line(source, response))
            encoded = response.headers.get("Content-Encoding", "identity").lower() != "identity"
            announced = response.headers.get("Content-Length")
            for chunk in response.iter_content(_CHUNK):
                out.write(chunk)
                written += len(chunk)
                if time.monotonic() - start > total_timeout_s:
                    raise ModelError(f"download from {source} took longer than "
                                     f"{total_timeout_s:g} s ({written:,} bytes so far); "
                                     f"try again, {_MIRROR_HINT}")
    except requests.exceptions.Timeout:
        raise ModelError(f"no answer from {source} within {timeout_s:g} s") from None
    except requests.exceptions.ChunkedEncodingError:  # the server stopped mid-file
        raise ModelError(f"download from {source} was cut short after {written:,} "
                         "bytes") from None
    except requests.exceptions.ConnectionError as exc:
        raise ModelError(_connection_line(source, exc)) from None
    except requests.exceptions.RequestException as exc:
        raise ModelError(f"download from {source} failed: {type(exc).__name__}") from None
    # Content-Length counts the encoded body; only an unencoded one is comparable here.
    if not encoded and announced is not None and announced.isdigit() \
            and int(announced) != written:
        raise ModelError(f"download from {source} was cut short: {written:,} of "
                         f"{int(announced):,} bytes")
    return written


def copy_source(source: str, out: Any, *, timeout_s: float,
                total_timeout_s: float = DEFAULT_TOTAL_TIMEOUT_S) -> int:
    """Write the file at ``source`` to ``out``; the number of bytes written.

    Parameters
    ----------
    source : str
        ``http(s)://`` or ``file://`` URL (percent-encoded), or a local path.
    out : binary file object
        Where the bytes go.
    timeout_s : float
        Seconds to wait for the server to connect and for each read.
    total_timeout_s : float, optional
        Seconds the whole download may take; default :data:`DEFAULT_TOTAL_TIMEOUT_S`.

    Returns
    -------
    int
        Bytes written (decoded, when the server compressed them).

    Raises
    ------
    ModelError
        One line: an HTTP error (a 429 with when to retry), an unreachable address (SSL and
        proxy failures naming ``REQUESTS_CA_BUNDLE`` / ``HTTPS_PROXY``), a download cut short
        or past ``total_timeout_s``, or an unreadable file.
    """
    parsed = urlparse(source)
    if parsed.scheme in ("http", "https"):
        return _copy_http(source, out, timeout_s, total_timeout_s)
    path = url2pathname(parsed.path) if parsed.scheme == "file" else source
    written = 0
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                out.write(chunk)
                written += len(chunk)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    return written
