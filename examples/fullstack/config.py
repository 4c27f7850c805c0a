"""Settings from the environment, read once at import (the app is configured per process)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """What the service needs to start; every field comes from a ``FULLSTACK_*`` variable."""

    data_dir: Path
    """Folder holding the SQLite database file (``FULLSTACK_DATA_DIR``)."""
    secret_key: str
    """HS256 signing key for access tokens (``FULLSTACK_SECRET_KEY``)."""
    token_minutes: int
    """Access-token lifetime in minutes (``FULLSTACK_TOKEN_MINUTES``)."""
    first_superuser: str
    """Email (the login name) of the admin seeded on first start (``FULLSTACK_FIRST_SUPERUSER``)."""
    first_superuser_password: str
    """Its password (``FULLSTACK_FIRST_SUPERUSER_PASSWORD``)."""
    tenant: str
    """Tenant the seeded admin belongs to (``FULLSTACK_TENANT``)."""

    @property
    def database(self) -> Path:
        """The SQLite database file."""
        return self.data_dir / "app.db"


def _settings() -> Settings:
    env = os.environ
    return Settings(
        data_dir=Path(env.get("FULLSTACK_DATA_DIR", "./fullstack-data")),
        # Development defaults, as the template has them; a deployment sets real secrets.
        secret_key=env.get("FULLSTACK_SECRET_KEY", "changethis-changethis-changethis!"),
        token_minutes=int(env.get("FULLSTACK_TOKEN_MINUTES", "30")),
        first_superuser=env.get("FULLSTACK_FIRST_SUPERUSER", "admin@example.com"),
        first_superuser_password=env.get("FULLSTACK_FIRST_SUPERUSER_PASSWORD", "changethis"),
        tenant=env.get("FULLSTACK_TENANT", "acme"),
    )


settings = _settings()
