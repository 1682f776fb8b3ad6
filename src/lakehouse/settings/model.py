"""Every setting of the platform, in one validated object (``Settings``).

The sections follow ``lakehouse.yaml``: the warehouse and catalog, layer defaults, tables,
pipelines and their schedules, maintenance, serving, the server, auth, alerts, logging and
metrics. Every model forbids unknown keys, so a misspelt key is an error with its path.
Values the user writes as durations ("10m", "2h", 30) and sizes ("1GB", 512) are read
into seconds and bytes; secrets are ``Secret`` (never printed)."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ByteSize,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
)

LAYER_NAMES = ("bronze", "silver", "gold", "system", "realtime")

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$")


def parse_duration(value: Any) -> float:
    """Seconds from ``30``, ``"30s"``, ``"10m"``, ``"1.5h"``, ``"2 days"``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text such as 10m, 2h, 1d")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        found = _DURATION.match(str(value).lower())
        if not found or (found.group(2) and found.group(2) not in _UNITS):
            raise ValueError(
                f"{value!r} is not a duration: give seconds or a number with s, m, h, d or w "
                "(e.g. 90s, 10m, 2h, 1d)"
            )
        seconds = float(found.group(1)) * _UNITS.get(found.group(2) or "s", 1)
    if seconds < 0:
        raise ValueError("a duration cannot be negative")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def check_cron(expression: str) -> str:
    """Five fields (minute hour day-of-month month day-of-week), an ``@`` alias
    (``@hourly``, ``@daily``...) or six fields whose first is the second (``*/10 * * * * *``:
    every ten seconds), for schedules finer than a minute."""
    fields = expression.split() if isinstance(expression, str) else []
    plain = len(fields) in (5, 6) or (len(fields) == 1 and fields[0].startswith("@"))
    if not plain or not cron_valid(expression):
        raise ValueError(
            f"{expression!r} is not a cron expression: five fields, minute hour day-of-month "
            "month day-of-week (e.g. '*/15 * * * *' or '0 3 * * mon-fri'), or six with the "
            "second first (e.g. '*/10 * * * * *')"
        )
    return expression


def cron_valid(expression: str) -> bool:
    from croniter import croniter

    seconds = len(expression.split()) == 6
    return bool(croniter.is_valid(expression, second_at_beginning=seconds))


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"{name!r} is not a time zone: give an IANA name such as UTC or Europe/Paris"
        ) from exc
    return name


Cron = Annotated[str, BeforeValidator(check_cron)]
TimeZone = Annotated[str, BeforeValidator(check_timezone)]


# A secret value: read from the environment or a file (``env:NAME``, ``file:PATH`` in the
# file), kept out of reprs, logs and ``config show``.
Secret = SecretStr


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LayerSettings(Section):
    """Defaults of the tables of one layer (each table may override them)."""

    compression: str | None = None
    granularity: Literal["day", "month", "year"] | None = None
    partition_by: list[str] | None = None
    retention_days: int | None = Field(default=None, ge=1)
    metadata_columns: bool | None = None
    sla: Duration | None = None  # data older than this is stale


class TableSettings(Section):
    """One table's operational settings over its layer's."""

    sla: Duration | None = None


class PipelineSettings(Section):
    path: str
    schedule: Cron | None = None
    timezone: TimeZone = "UTC"
    overlap: Literal["skip", "queue"] = "skip"
    catch_up: Literal["none", "latest", "all"] = "latest"
    retries: int = Field(default=0, ge=0, le=20)
    retry_backoff: Duration = 30.0  # doubled after each failed attempt
    enabled: bool = True
    engine: EngineName | None = None  # the engine of its datasets (unset: engine.default)


class MaintenancePolicy(Section):
    """What maintenance does to a table; unset fields come from the layer's policy."""

    small_files: int | None = Field(default=None, ge=2)  # compact above this many
    small_file_size: ByteSize | None = None  # a file under this size is small
    target_file_size: ByteSize | None = None
    zorder: list[str] | None = None
    vacuum_after: Duration | None = None  # keep removed files this long (time travel)
    checkpoint_every: int | None = Field(default=None, ge=1)  # versions between checkpoints
    apply_retention: bool | None = None  # delete rows older than the retention days
    enabled: bool | None = None


DEFAULT_POLICY = MaintenancePolicy(
    small_files=16,
    small_file_size=ByteSize(32 * 1024 * 1024),
    target_file_size=ByteSize(128 * 1024 * 1024),
    zorder=[],
    vacuum_after=168 * 3600.0,
    checkpoint_every=100,
    apply_retention=True,
    enabled=True,
)


class MaintenanceSettings(Section):
    schedule: Cron | None = "0 3 * * *"
    timezone: TimeZone = "UTC"
    policy: MaintenancePolicy = DEFAULT_POLICY
    layers: dict[str, MaintenancePolicy] = Field(default_factory=dict)
    tables: dict[str, MaintenancePolicy] = Field(default_factory=dict)
    system_tables: bool = True  # compact the system tables (audit log, runs, alerts)

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, value: dict[str, MaintenancePolicy]) -> dict[str, MaintenancePolicy]:
        return _check_layers(value)

    def policy_for(self, table: str) -> MaintenancePolicy:
        """The policy of ``table`` (``layer.name``): its own over its layer's over the
        file's ``policy`` over the built-in defaults (a key left out keeps its default)."""
        layer = table.split(".", 1)[0]
        merged = DEFAULT_POLICY.model_dump()
        for over in (self.policy, self.layers.get(layer), self.tables.get(table)):
            if over is not None:
                merged.update({k: v for k, v in over.model_dump().items() if v is not None})
        return MaintenancePolicy(**merged)


EngineName = Literal["duckdb", "spark", "auto"]


class EngineSettings(Section):
    """Which engine runs pipeline datasets: DuckDB in the process, Apache Spark, or auto
    (Spark when a dataset's inputs hold at least ``spark_above`` bytes or rows)."""

    default: EngineName = "duckdb"
    spark_above: ByteSize = ByteSize(10 * 1024**3)  # auto: inputs this large go to Spark
    spark_above_rows: int | None = Field(default=None, ge=0)  # auto: or this many rows


class SparkSettings(Section):
    """The Spark session a run or a query starts (once per process)."""

    master: str = "local[*]"  # local[N], spark://host:port
    app_name: str = "lakehouse"
    config: dict[str, str] = Field(default_factory=dict)  # spark.* settings, as given


class ServingSettings(Section):
    url: Secret | None = None  # a ClickHouse server; unset: the embedded store
    refresh_interval: Duration = 0.25


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8888, ge=0, le=65535)
    workers: int | None = Field(default=None, ge=1)  # default: one per core but one, 1 to 4
    pipelines: str = "pipelines"
    dashboards: str = "dashboards"
    tls_cert: str | None = None
    tls_key: str | None = None
    forwarded_allow_ips: str | None = None
    scheduler: bool = True  # the server runs the scheduler
    query_timeout: Duration = 30.0  # a query of the API is stopped after this long
    max_rows: int = Field(default=100_000, ge=1)  # rows a query of the API returns at most


class AuthSettings(Section):
    admin_token: Secret | None = None  # a fixed admin token; unset: one per server start
    failures_per_window: int = Field(default=10, ge=1)  # wrong tokens an address may send
    failure_window: Duration = 60.0


AlertKind = Literal["stale", "quality", "schedule_lag", "storage_growth", "run_failed"]


class AlertRule(Section):
    name: str
    when: AlertKind
    tables: list[str] = Field(default_factory=lambda: ["*"])  # glob patterns
    pipelines: list[str] = Field(default_factory=lambda: ["*"])
    after: Duration | None = None  # stale: data older; schedule_lag: run late by more
    share: float | None = Field(default=None, gt=0, le=1)  # quality: failing share above
    per_day: ByteSize | None = None  # storage_growth: bytes a day above
    severity: Literal["info", "warning", "critical"] = "warning"


DEFAULT_RULES = [
    AlertRule(name="data-stale", when="stale", after=600.0),
    AlertRule(name="quality-failures", when="quality", share=0.05),
    AlertRule(name="pipeline-behind-schedule", when="schedule_lag", after=900.0),
    AlertRule(name="storage-growth", when="storage_growth", per_day=ByteSize(10**9)),
    AlertRule(name="run-failed", when="run_failed", severity="critical"),
]


class Webhook(Section):
    url: Secret
    headers: dict[str, Secret] = Field(default_factory=dict)
    timeout: Duration = 5.0
    retries: int = Field(default=3, ge=0, le=10)


class AlertSettings(Section):
    rules: list[AlertRule] = Field(default_factory=lambda: list(DEFAULT_RULES))
    webhooks: list[Webhook] = Field(default_factory=list)
    log: bool = True
    interval: Duration = 60.0  # how often the scheduler evaluates the rules; 0: never

    @field_validator("rules")
    @classmethod
    def _unique(cls, rules: list[AlertRule]) -> list[AlertRule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}: give each its own name")
            seen.add(rule.name)
            needs = {"stale": "after", "schedule_lag": "after", "quality": "share"}
            needs["storage_growth"] = "per_day"
            key = needs.get(rule.when)
            if key is not None and getattr(rule, key) is None:
                raise ValueError(f"rule {rule.name!r} ({rule.when}) needs {key!r}")
        return rules


class LoggingSettings(Section):
    format: Literal["auto", "text", "json"] = "auto"  # auto: text on a terminal, else json
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value


class MetricsSettings(Section):
    enabled: bool = True  # false: GET /metrics answers 404
    # Who may read GET /metrics: with a token, callers sending it as a bearer token (from
    # anywhere); without one, callers on the loopback interface only.
    token: Secret | None = None


class Settings(Section):
    warehouse: str = "lakehouse_data"
    format: Literal["delta", "iceberg"] = "delta"  # the table format of new tables
    catalog_url: Secret | None = None  # may hold a password
    storage_options: dict[str, Secret] = Field(default_factory=dict)
    layers: dict[str, LayerSettings] = Field(default_factory=dict)
    tables: dict[str, TableSettings] = Field(default_factory=dict)
    pipelines: dict[str, PipelineSettings] = Field(default_factory=dict)
    maintenance: MaintenanceSettings = MaintenanceSettings()
    engine: EngineSettings = EngineSettings()
    spark: SparkSettings = SparkSettings()
    serving: ServingSettings = ServingSettings()
    server: ServerSettings = ServerSettings()
    auth: AuthSettings = AuthSettings()
    alerts: AlertSettings = AlertSettings()
    logging: LoggingSettings = LoggingSettings()
    metrics: MetricsSettings = MetricsSettings()

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, value: dict[str, LayerSettings]) -> dict[str, LayerSettings]:
        return _check_layers(value)

    @field_validator("tables")
    @classmethod
    def _table_names(cls, value: dict[str, TableSettings]) -> dict[str, TableSettings]:
        for name in value:
            layer = name.split(".", 1)[0]
            if "." not in name or layer not in LAYER_NAMES:
                raise ValueError(f"{name!r} is not a table name: give layer.table")
        return value

    def sla_of(self, table: str) -> float | None:
        """Seconds after which ``table``'s data is stale, if a limit is set."""
        own = self.tables.get(table)
        if own is not None and own.sla is not None:
            return own.sla
        layer = self.layers.get(table.split(".", 1)[0])
        return layer.sla if layer is not None else None


def _check_layers(value: dict[str, Any]) -> dict[str, Any]:
    for layer in value:
        if layer not in LAYER_NAMES:
            raise ValueError(f"unknown layer {layer!r}: the layers are {', '.join(LAYER_NAMES)}")
    return value
