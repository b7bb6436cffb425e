"""Which MDF Connect v2 service stembench talks to, chosen the way ``mdf-cli`` chooses it.

``mdf-cli`` 0.3.0 resolves the service as: an explicit ``--service``, else ``$MDF_SERVICE``,
else ``defaults.service`` in its config file (``~/.config/mdf/config.json``), else its
release default ``DEFAULT_SERVICE`` (``mdf/core/config.py:131-139``; the default is
``"staging"`` at ``mdf/core/config.py:16``, "flip to 'prod' at cutover"). Its API base URL
per service is ``mdf/core/backend_client.py:33-38`` (``_V2_API_URLS``), and
``$MDF_API_URL`` overrides the URL (``backend_client.py:63-66``).

:func:`resolve_service` follows the same order. Where ``mdf-cli`` is installed (the
Foundry environment) the last two steps are ``mdf-cli``'s own ``resolve_service``, so
stembench follows when ``mdf-cli`` flips its default; elsewhere (the default environment,
where ``mdf-cli`` cannot be installed next to globus-sdk 4) they are
:data:`FALLBACK_DEFAULT_SERVICE`, which a test in the Foundry environment checks against
``mdf-cli``'s value.
"""

from __future__ import annotations

import os

from stembench.errors import InputError

__all__ = [
    "FALLBACK_DEFAULT_SERVICE",
    "MDF_API_ENV",
    "MDF_API_URLS",
    "SERVICE_ENV",
    "api_url",
    "resolve_service",
]

MDF_API_URLS: dict[str, str] = {
    "prod": "https://api.materialsdatafacility.org",
    "staging": "https://3xicgt0g7l.execute-api.us-east-1.amazonaws.com/staging",
    "dev": "https://api-dev.materialsdatafacility.org",
}
"""MDF Connect v2 API base URL per service (``mdf/core/backend_client.py:33-38``, without
mdf-cli's ``local`` developer backend)."""
FALLBACK_DEFAULT_SERVICE = "staging"
"""``mdf-cli`` 0.3.0's ``DEFAULT_SERVICE`` (``mdf/core/config.py:16``), used where
``mdf-cli`` is not installed. The production host does not exist yet."""
SERVICE_ENV = "MDF_SERVICE"
"""Environment variable naming the service (the one ``mdf-cli`` reads)."""
MDF_API_ENV = "MDF_API_URL"
"""Environment variable overriding the API URL (the one ``mdf-cli`` reads)."""
_ALIASES = {"production": "prod", "development": "dev"}


def _mdf_cli_choice() -> str:
    try:
        from mdf.core import config
    except ImportError:
        return FALLBACK_DEFAULT_SERVICE
    return str(config.resolve_service(None))


def resolve_service(service: str | None = None) -> str:
    """Return the MDF service to use: ``service``, else ``$MDF_SERVICE``, else mdf-cli's.

    Parameters
    ----------
    service : str, optional
        ``"prod"``, ``"staging"`` or ``"dev"`` (``"production"``/``"development"`` too).

    Returns
    -------
    str
        One of the keys of :data:`MDF_API_URLS`.

    Raises
    ------
    InputError
        If the service is not one of them.
    """
    chosen = service or os.environ.get(SERVICE_ENV) or _mdf_cli_choice()
    normalized = chosen.strip().lower()
    normalized = _ALIASES.get(normalized, normalized)
    if normalized not in MDF_API_URLS:
        raise InputError(f"MDF service must be one of {sorted(MDF_API_URLS)}, got "
                         f"{chosen!r}" + ("" if service else f" (from ${SERVICE_ENV} or "
                                                             "mdf-cli's configuration)"))
    return normalized


def api_url(service: str | None = None) -> str:
    """Return the API base URL of a service: ``$MDF_API_URL`` if set, else the table's."""
    return os.environ.get(MDF_API_ENV) or MDF_API_URLS[resolve_service(service)]
