"""The YAML file of a REST source (``lakehouse ingest api FILE``), validated::

base_url: https://api.example.com/v1
endpoint: /orders
into: bronze.orders
params: {status: open}            # query parameters of every request
records_path: data.items          # where the records are in a page (none: the page)
auth:                             # bearer | basic | api_key
  type: bearer
  token_env: ORDERS_TOKEN         # the secret comes from the environment
pagination:                       # none | page | offset | cursor | link
  type: cursor
  cursor_param: cursor
  cursor_path: meta.next
incremental:
  param: updated_since            # sent with the mark (inclusive: at or after)
  field: updated_at               # the record field whose largest value is the mark
  initial: "2024-01-01T00:00:00Z"
rate_limit: 5                     # requests a second at most
retries: {attempts: 5, backoff: 0.5, max_backoff: 30}
timeout: 10                       # seconds for one request
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from lakehouse.errors import LakehouseError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Auth(_Strict):
    type: Literal["bearer", "basic", "api_key"]
    token_env: str | None = None  # bearer
    username: str | None = None  # basic
    password_env: str | None = None  # basic
    header: str = "X-API-Key"  # api_key
    key_env: str | None = None  # api_key

    def headers(self) -> dict[str, str]:
        if self.type == "bearer":
            return {"Authorization": f"Bearer {_secret(self.token_env, 'token_env')}"}
        if self.type == "api_key":
            return {self.header: _secret(self.key_env, "key_env")}
        return {}

    def basic(self) -> tuple[str, str] | None:
        if self.type != "basic":
            return None
        if not self.username:
            raise LakehouseError("basic auth needs a username", "add auth.username")
        return self.username, _secret(self.password_env, "password_env")


def _secret(variable: str | None, key: str) -> str:
    if not variable:
        raise LakehouseError(f"auth.{key} is missing", f"name the environment variable: {key}: X")
    value = os.environ.get(variable)
    if not value:
        raise LakehouseError(
            f"the environment variable {variable} is not set", f"export {variable}=... first"
        )
    return value


class Pagination(_Strict):
    type: Literal["none", "page", "offset", "cursor", "link"] = "none"
    page_param: str = "page"
    start: int = 1  # page: the first page's number
    size_param: str | None = None  # page: the page size's parameter, sent with size
    size: int = 100
    offset_param: str = "offset"
    limit_param: str = "limit"
    cursor_param: str = "cursor"
    cursor_path: str = "next_cursor"  # where the next cursor is in a page
    max_pages: int = 10_000


class Incremental(_Strict):
    param: str
    field: str
    initial: str | int | None = None


class Retries(_Strict):
    attempts: int = Field(default=5, ge=1)
    backoff: float = Field(default=0.5, ge=0)  # seconds before the first retry, doubled each time
    max_backoff: float = Field(default=60, ge=0)


class RestSource(_Strict):
    base_url: str
    endpoint: str = ""
    into: str
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)
    headers: dict[str, str] = Field(default_factory=dict)
    records_path: str | None = None
    auth: Auth | None = None
    pagination: Pagination = Field(default_factory=Pagination)
    incremental: Incremental | None = None
    rate_limit: float | None = Field(default=None, gt=0)
    retries: Retries = Field(default_factory=lambda: Retries())
    timeout: float = Field(default=30, gt=0)
    source_system: str | None = None

    @property
    def url(self) -> str:
        if not self.endpoint:
            return self.base_url
        return self.base_url.rstrip("/") + "/" + self.endpoint.lstrip("/")


def load_source(path: str | Path) -> RestSource:
    file = Path(path)
    if not file.is_file():
        raise LakehouseError(f"no REST source file {file}", "give the path of its YAML file")
    try:
        raw = yaml.safe_load(file.read_text())
        return RestSource.model_validate(raw)
    except yaml.YAMLError as exc:
        raise LakehouseError(f"{file} is not valid YAML: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(file)'}: {e['msg']}" for e in exc.errors()
        )
        raise LakehouseError(
            f"{file}: {problems}", "see docs/SOURCES.md for the keys of a REST source"
        ) from exc
