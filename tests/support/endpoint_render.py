"""Render an endpoint directory's user template as globus-compute-endpoint does per user."""

from __future__ import annotations

import os
import pwd
import uuid
from pathlib import Path
from typing import Any


def render_as_endpoint(ep_dir: Path, user_opts: dict[str, Any]) -> Any:
    """The user endpoint config the endpoint renders for the calling user and ``user_opts``.

    The endpoint package's own code: ``get_config``, the schema check and
    ``render_config_user_template`` (globus_compute_endpoint/endpoint/config/utils.py).
    """
    from globus_compute_endpoint.endpoint.config import utils
    from globus_compute_endpoint.endpoint.endpoint import Endpoint
    from globus_compute_endpoint.endpoint.identity_mapper import MappedPosixIdentity

    parent = utils.get_config(ep_dir)
    template_path = Endpoint.user_config_template_path(ep_dir, parent)
    schema = utils.load_user_config_schema(Endpoint.user_config_schema_path(ep_dir, parent))
    me = MappedPosixIdentity(pwd.getpwuid(os.getuid()), [], str(uuid.uuid4()))
    text = utils.render_config_user_template(
        parent, utils.load_user_config_template(template_path), template_path, me,
        schema, user_opts, {"python": {"version_tuple": [3, 11, 9]}})
    return utils.load_config_yaml(text)
