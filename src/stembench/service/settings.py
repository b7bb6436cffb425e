"""Typed, validated settings of the service, read from arguments or ``STEMBENCH_SERVICE_*``
environment variables (pydantic-settings: each variable is read as its field's type).
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pydantic_settings

from stembench._optional import require
from stembench.errors import InputError

__all__ = ["ENV_PREFIX", "ExecutorKind", "ServiceSettings", "default_data_dir"]

ENV_PREFIX = "STEMBENCH_SERVICE_"
ExecutorKind = Literal["local", "thread", "globus"]
#: Fields whose values a message never shows (a database URL may hold a password).
_SECRET_FIELDS = frozenset({"globus_client_secret", "credentials_key", "database_url"})
_DOTTED = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/stembench/service`` (``~/.local/share/stembench/service``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "stembench" / "service"


def _comma_separated(value: Any) -> Any:
    """An environment variable's ``"a, b"`` as ``("a", "b")``; other values as given."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class ServiceSettings(pydantic_settings.BaseSettings):
    """Everything the service is configured by.

    Attributes
    ----------
    data_dir : Path
        Where job results files, reports and the default SQLite database live.
    database_url : str or None
        SQLAlchemy URL; ``None`` means ``sqlite:///<data_dir>/stembench.db``. PostgreSQL:
        ``postgresql+psycopg://user:password@host/dbname``.
    globus_client_id, globus_client_secret : str or None
        The service's Globus Auth confidential client; submitting is refused (503) without.
    required_scope : str or None
        Scope a token must carry; default ``https://auth.globus.org/scopes/<client id>/benchmark``.
    token_cache_ttl_s : float
        How long (seconds) an accepted token is reused before the service looks it up in its
        logout record again; Globus Auth is asked once per token, until the token's ``exp``.
    introspection_timeout_s : float
        How long (seconds) a request waits for Globus Auth to check its token before it is
        answered 503.
    max_payload_bytes : int
        Largest request body accepted (bytes); larger ones get 413.
    body_read_timeout_s : float
        Seconds a request's body may go without sending anything (an idle timeout, restarted
        by every piece received: a slow but steady body passes); a stalled body gets 408
        and its connection is closed.
    max_connections : int
        Connections and tasks uvicorn serves at once (``limit_concurrency``); more get 503.
    graceful_shutdown_s : float
        Seconds ``stembench serve`` waits for requests in flight when asked to stop before
        it cancels them (``timeout_graceful_shutdown``).
    executor : {"local", "thread", "globus"}
        Where jobs run: a local process pool, threads in this process (light models, tests),
        or a Globus Compute endpoint (the job's ``endpoint_id`` or ``default_endpoint_id``),
        always as the submitting user (a Globus Compute token obtained for them through
        the dependent-token grant), never as the service.
    workers : int
        Workers of the local pool / threads per job.
    allowed_endpoint_ids : tuple of str
        The Globus Compute endpoints jobs may name (``executor == "globus"`` only); a request
        naming another gets 403. Default: none (local workers only). Environment: a
        comma-separated list.
    default_endpoint_id : str or None
        Globus Compute endpoint used when ``executor == "globus"`` and a job names none; must
        be allowed.
    compute_function_id : str or None
        stembench's registered Globus Compute function (``stembench endpoint function
        --register --public``), needed with ``executor == "globus"``.
    compute_endpoint_schema : str or None
        The option schema of the allowed endpoints: the stembench template they were written
        from (``slurm-gpu``) or a ``user_config_schema.json`` file. Used instead of the
        schema an endpoint publishes, which only its owner may read (403 for the others):
        with it, job options are checked at submission and each task carries the
        endpoint's own per-task limit (``task_timeout_s``); ``None``: the published one.
    credentials_key : str or None
        Fernet key (``cryptography.fernet.Fernet.generate_key()``) that encrypts the users'
        delegated Globus Compute tokens at rest; needed with ``executor == "globus"``.
        Environment: ``STEMBENCH_SERVICE_CREDENTIALS_KEY``. Never shown in ``repr``.
    compute_timeout_s : float
        Seconds one call of the job worker to the Globus Compute web service may take
        (three attempts at most); the service's own checks with Globus Compute, made while
        a request waits, get one attempt of ``introspection_timeout_s``.
    dataset_cache_dir : str or None
        Dataset cache directory on the executing machine (``None``: its default).
    options_check : str
        ``module:function`` that refuses a submission's model options (``(model, options,
        allow_files=False)``, raising a stembench error) before anything is queued.
    shard_function, describe_function : str
        ``module:function`` run per shard / to list a dataset's images (administrator setting).
    run_worker : bool
        Start the job worker with the app.
    poll_interval_s, lease_s : float
        Worker poll interval and job lease length (seconds); a job whose lease ran out (a dead
        worker) is claimed again and resumed from its results file.
    max_job_attempts : int
        Claims of one job at most: a job whose worker stopped (its lease ran out) this many
        times ends failed rather than being taken again.
    cancel_poll_s : float
        How often (seconds) a running job's worker looks for a cancellation (and renews the
        lease); a cancelled job stops within about this time.
    report_bootstrap : int
        Bootstrap samples of the cutoffs computed when a job finishes.
    max_upload_bytes, upload_part_bytes : int
        Largest compressed results upload (bytes, all parts together) and largest part.
    upload_quota_bytes, upload_quota_parts : int
        Bytes and parts (files) one user's unfinished uploads may hold together (parts count
        as they arrive).
    upload_abandon_s : float
        An unfinished upload that receives no part for this long (seconds) is deleted.
    figure_overlays_per_minute : int
        New radar overlays (sets of entries the worker does not pre-render) drawn per
        minute for one caller (identity, or client address) at most, ten times that for all
        callers together; more are answered 429.
    """

    model_config = pydantic_settings.SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", env_ignore_empty=True)

    data_dir: Path = pydantic.Field(default_factory=default_data_dir)
    database_url: str | None = None
    globus_client_id: str | None = None
    globus_client_secret: str | None = pydantic.Field(default=None, repr=False)
    required_scope: str | None = None
    token_cache_ttl_s: float = 60.0
    introspection_timeout_s: float = 5.0
    max_payload_bytes: int = 64 * 1024
    body_read_timeout_s: float = 60.0
    max_connections: int = 1000
    graceful_shutdown_s: float = 30.0
    executor: ExecutorKind = "local"
    workers: int = 2
    allowed_endpoint_ids: Annotated[
        tuple[str, ...], pydantic_settings.NoDecode,
        pydantic.BeforeValidator(_comma_separated),
        pydantic.AfterValidator(lambda ids: tuple(_uuid(e, "allowed_endpoint_ids") for e in ids)),
    ] = ()
    default_endpoint_id: str | None = None
    compute_function_id: str | None = None
    compute_endpoint_schema: str | None = None
    credentials_key: str | None = pydantic.Field(default=None, repr=False)
    compute_timeout_s: float = 60.0
    dataset_cache_dir: str | None = None
    shard_function: str = "stembench.endpoints.shard:evaluate_shard"
    describe_function: str = "stembench.endpoints.shard:describe_dataset"
    options_check: str = "stembench.endpoints.models.options:check_options"
    run_worker: bool = True
    poll_interval_s: float = 1.0
    lease_s: float = 60.0
    cancel_poll_s: float = 1.0
    max_job_attempts: int = 3
    report_bootstrap: int = 100
    max_upload_bytes: int = 64 * 1024 * 1024
    upload_part_bytes: int = 8 * 1024 * 1024
    upload_quota_bytes: int = 128 * 1024 * 1024
    upload_quota_parts: int = 1024
    upload_abandon_s: float = 24 * 3600.0
    figure_overlays_per_minute: int = 30

    @classmethod
    def settings_customise_sources(cls, settings_cls: Any, init_settings: Any,
                                   env_settings: Any, dotenv_settings: Any,
                                   file_secret_settings: Any) -> tuple[Any, ...]:
        """Settings come from the arguments only; :meth:`from_env` adds the environment."""
        return (init_settings,)

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            error = first.get("ctx", {}).get("error")
            if isinstance(error, InputError):  # from the checks below: already one clear line
                raise error from None
            where = ".".join(str(part) for part in first["loc"]) or "settings"
            shown = (f" (got {first.get('input')!r})" if first["loc"] and
                     first["loc"][0] not in _SECRET_FIELDS else "")  # a secret is never shown
            raise InputError(f"service settings: {where}: {first['msg']}{shown}") from None

    @pydantic.model_validator(mode="after")
    def _checked(self) -> ServiceSettings:
        self._check()
        return self

    def _check(self) -> None:
        for name in ("token_cache_ttl_s", "introspection_timeout_s", "poll_interval_s",
                     "lease_s", "cancel_poll_s", "upload_quota_bytes", "upload_quota_parts",
                     "upload_abandon_s",
                     "figure_overlays_per_minute", "max_job_attempts",
                     "body_read_timeout_s", "max_connections", "graceful_shutdown_s",
                     "compute_timeout_s"):
            if not getattr(self, name) > 0:
                raise InputError(f"service settings: {name} must be > 0, got {getattr(self, name)}")
        if self.max_payload_bytes < 1024:
            raise InputError(f"service settings: max_payload_bytes must be >= 1024, got "
                             f"{self.max_payload_bytes}")
        if self.workers < 1 or self.report_bootstrap < 0:
            raise InputError("service settings: workers must be >= 1 and report_bootstrap >= 0")
        for name in ("shard_function", "describe_function", "options_check"):
            if not _DOTTED.match(getattr(self, name)):
                raise InputError(f"service settings: {name} must be 'module:function', got "
                                 f"{getattr(self, name)!r}")
        if bool(self.globus_client_id) != bool(self.globus_client_secret):
            raise InputError("service settings: set both the Globus client id and its secret, "
                             "or neither")
        self._check_endpoints()

    def _check_endpoints(self) -> None:
        allowed = self.allowed_endpoint_ids
        if self.executor != "globus":
            if allowed or self.default_endpoint_id or self.compute_endpoint_schema:
                raise InputError("service settings: allowed_endpoint_ids, default_endpoint_id "
                                 "and compute_endpoint_schema need executor 'globus'")
            return
        if not allowed:
            raise InputError("service settings: executor 'globus' needs allowed_endpoint_ids "
                             "(the endpoints jobs may use)")
        if not self.auth_configured:
            raise InputError("service settings: executor 'globus' needs the Globus client id "
                             "and secret (jobs run with each user's own Compute token)")
        if not self.compute_function_id:
            raise InputError("service settings: executor 'globus' needs compute_function_id "
                             "(stembench endpoint function --register --public)")
        _uuid(self.compute_function_id, "compute_function_id")
        if self.compute_endpoint_schema:  # read now: a bad one is refused at start-up
            from stembench.client.remote_endpoints import parse_endpoint_options

            try:
                parse_endpoint_options((), schema=self.compute_endpoint_schema)
            except InputError as exc:
                raise InputError(f"service settings: compute_endpoint_schema: {exc}") from None
        _check_fernet_key(self.credentials_key)
        if self.default_endpoint_id and _uuid(self.default_endpoint_id,
                                              "default_endpoint_id") not in allowed:
            raise InputError("service settings: default_endpoint_id must be one of "
                             "allowed_endpoint_ids")

    def endpoint_refusal(self, endpoint_id: str | None) -> str | None:
        """Why a job may not run on ``endpoint_id`` (``None``: it may)."""
        if endpoint_id is None:
            return None
        try:
            canonical = str(uuid.UUID(endpoint_id))
        except ValueError:
            return f"endpoint_id {endpoint_id!r} is not a UUID"
        if canonical in self.allowed_endpoint_ids:
            return None
        if not self.allowed_endpoint_ids:
            return ("this service runs evaluations on its own workers and may use no Globus "
                    "Compute endpoint; leave endpoint_id out")
        return (f"endpoint {canonical} is not one this service may use; allowed: "
                f"{', '.join(self.allowed_endpoint_ids)}")

    @property
    def credentials_dir(self) -> Path:
        """Where each user's delegated Globus Compute token is kept while they have a live
        job (encrypted, owner-only files; see :mod:`stembench.service.credentials`)."""
        return self.data_dir / "credentials"

    def credential_store(self) -> Any:
        """The :class:`~stembench.service.credentials.CredentialStore` of this service."""
        from stembench.service.credentials import CredentialStore

        _check_fernet_key(self.credentials_key)
        return CredentialStore(self.credentials_dir, str(self.credentials_key))

    @property
    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite in ``data_dir``."""
        return self.database_url or f"sqlite:///{self.data_dir / 'stembench.db'}"

    @property
    def resolved_scope(self) -> str | None:
        """The scope tokens must carry (``None`` when auth is not configured)."""
        if self.required_scope:
            return self.required_scope
        if self.globus_client_id:
            return f"https://auth.globus.org/scopes/{self.globus_client_id}/benchmark"
        return None

    @property
    def auth_configured(self) -> bool:
        """True when a Globus client id and secret are set."""
        return bool(self.globus_client_id and self.globus_client_secret)

    @classmethod
    def from_env(cls, **overrides: Any) -> ServiceSettings:
        """Settings from ``STEMBENCH_SERVICE_<FIELD>`` variables, then ``overrides``.

        For example ``STEMBENCH_SERVICE_DATABASE_URL``, ``STEMBENCH_SERVICE_GLOBUS_CLIENT_ID``,
        ``STEMBENCH_SERVICE_GLOBUS_CLIENT_SECRET``, ``STEMBENCH_SERVICE_REQUIRED_SCOPE``;
        ``STEMBENCH_SERVICE_ALLOWED_ENDPOINT_IDS`` is a comma-separated list. ``None``
        overrides are ignored.

        Raises
        ------
        InputError
            If a value cannot be read as its field's type, or the settings are inconsistent.
        """
        source = pydantic_settings.EnvSettingsSource(cls, env_prefix=ENV_PREFIX,
                                                     env_ignore_empty=True)
        values = {name: value for name, value in source().items()}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _check_fernet_key(key: str | None) -> None:
    """Refuse a missing or malformed credentials key (without ever showing it)."""
    hint = ("(generate one: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')")
    if not key:
        raise InputError("service settings: executor 'globus' needs credentials_key, the key "
                         f"that encrypts the users' delegated tokens {hint}")
    fernet = require("cryptography.fernet", extra="service", purpose="Stored credentials")
    try:
        fernet.Fernet(key.encode())
    except (ValueError, TypeError):
        raise InputError("service settings: credentials_key is not a Fernet key (32 "
                         f"url-safe base64-encoded bytes) {hint}") from None


def _uuid(value: str, name: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise InputError(f"service settings: {name}: {value!r} is not a UUID") from exc
