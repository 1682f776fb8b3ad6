"""Reading the settings: ``lakehouse.yaml`` (its base and the chosen profile), then the
``LAKEHOUSE_*`` environment variables, which win; ``env:NAME`` and ``file:PATH`` values
are read from the environment or a file. Each value remembers where it came from, and
each problem names its key path, its line (or variable) and what is allowed."""

from __future__ import annotations

import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

import lakehouse.marked_yaml as marked_yaml
from lakehouse.errors import LakehouseError
from lakehouse.settings.model import Settings

CONFIG_ENV = "LAKEHOUSE_CONFIG"
PROFILE_ENV = "LAKEHOUSE_PROFILE"
FILE_NAMES = ("lakehouse.yaml", "lakehouse.yml")
DEFAULT_PROFILE = "local"

# Variables older than the configuration file, kept as the short names of their keys.
ALIASES = {
    "LAKEHOUSE_WAREHOUSE": "warehouse",
    "LAKEHOUSE_CATALOG_URL": "catalog_url",
    "LAKEHOUSE_SERVING_URL": "serving.url",
    "LAKEHOUSE_DASHBOARDS": "server.dashboards",
    "LAKEHOUSE_LOG_FORMAT": "logging.format",
    "LAKEHOUSE_LOG_LEVEL": "logging.level",
    "LAKEHOUSE_ADMIN_TOKEN": "auth.admin_token",
    "LAKEHOUSE_AUTH_FAILURES": "auth.failures_per_window",
    "LAKEHOUSE_AUTH_WINDOW": "auth.failure_window",
    "LAKEHOUSE_QUERY_TIMEOUT": "server.query_timeout",
    "LAKEHOUSE_MAX_ROWS": "server.max_rows",
}
# Paths in the file are relative to the file's folder.
_PATH_KEYS: tuple[str, ...] = ("warehouse", "server.pipelines", "server.dashboards")
_PATH_KEYS += ("server.tls_cert", "server.tls_key")


@dataclass(frozen=True)
class Problem:
    path: str  # dotted key path, e.g. pipelines.demo.schedule
    where: str  # lakehouse.yaml:12, env LAKEHOUSE_X, or the file
    message: str

    def __str__(self) -> str:
        at = f"{self.where}: " if self.where else ""
        key = f"{self.path}: " if self.path else ""
        return f"{at}{key}{self.message}"


class SettingsError(LakehouseError):
    """The settings cannot be read; ``problems`` lists every one."""

    def __init__(self, problems: list[Problem], file: Path | None) -> None:
        self.problems = problems
        self.file = file
        head = f"{len(problems)} problem(s) in the settings" + (f" ({file})" if file else "")
        super().__init__(
            head + ":\n" + "\n".join(f"  {p}" for p in problems),
            "fix them (lakehouse config validate lists them; lakehouse config init writes a "
            "commented template)",
        )


@dataclass
class LoadedSettings:
    settings: Settings
    file: Path | None
    profile: str
    sources: dict[str, str] = field(default_factory=dict)  # dotted path -> where from

    def source_of(self, path: str) -> str:
        """Where the value at ``path`` came from: a file line, a variable, or default."""
        return self.sources.get(path, "default")


def find_config(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The configuration file: the one given, ``LAKEHOUSE_CONFIG``, or ``lakehouse.yaml``
    in the working folder; ``None`` when there is none (the defaults apply)."""
    given = explicit or os.environ.get(CONFIG_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise LakehouseError(
                f"no configuration file {path}",
                "give an existing file, or write one with: lakehouse config init",
            )
        return path.resolve()
    for name in FILE_NAMES:
        if Path(name).is_file():
            return Path(name).resolve()
    return None


def load_settings(
    config: str | os.PathLike[str] | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> LoadedSettings:
    """The effective settings; ``SettingsError`` lists every problem found."""
    env = os.environ if env is None else env
    file = find_config(config)
    chosen = profile or env.get(PROFILE_ENV) or None
    problems: list[Problem] = []
    sources: dict[str, str] = {}
    data: dict[str, Any] = {}
    if file is not None:
        raw = _read(file, problems)
        if isinstance(raw, dict):
            chosen = chosen or _default_profile(raw, file, problems)
            data = _with_profile(raw, chosen or DEFAULT_PROFILE, file, sources, problems)
            _relative_to(data, file.parent)
    _from_env(data, env, sources)
    folder = file.parent if file is not None else Path.cwd()
    _resolve_secrets(data, "", Refs(env, folder, sources, problems))
    settings = Settings()
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems += _explain(exc, sources)
    if problems:
        raise SettingsError(problems, file)
    return LoadedSettings(settings, file, chosen or DEFAULT_PROFILE, sources)


def _read(file: Path, problems: list[Problem]) -> Any:
    try:
        raw = marked_yaml.load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        where = f"{file.name}:{marked_yaml.error_line(exc)}"
        problems.append(Problem("", where, f"not valid YAML: {marked_yaml.error_text(exc)}"))
        return None
    except OSError as exc:
        problems.append(Problem("", str(file), f"cannot read the file: {exc.strerror}"))
        return None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(Problem("", f"{file.name}:1", "the file must be a mapping of keys"))
        return None
    return raw


def _default_profile(raw: dict[str, Any], file: Path, problems: list[Problem]) -> str | None:
    chosen = raw.get("profile")
    if chosen is not None and not isinstance(chosen, str):
        problems.append(Problem("profile", _line(file, raw, "profile"), "give a profile name"))
        return None
    return chosen


def _line(file: Path, mapping: Any, key: str) -> str:
    lines = getattr(mapping, "lines", {})
    return f"{file.name}:{lines.get(key, getattr(mapping, 'line', 1))}"


def _with_profile(
    raw: dict[str, Any],
    profile: str,
    file: Path,
    sources: dict[str, str],
    problems: list[Problem],
) -> dict[str, Any]:
    """The file's base with the profile's chain (``inherits``) merged over it."""
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        problems.append(Problem("profiles", _line(file, raw, "profiles"), "give a mapping"))
        profiles = {}
    data: dict[str, Any] = {}
    _merge(data, raw, "", file, "", sources, skip=("profiles", "profile"))
    if profile not in profiles:
        if profile != DEFAULT_PROFILE:
            known = ", ".join(sorted(profiles)) or "none"
            problems.append(
                Problem(
                    "profile",
                    "",
                    f"no profile {profile!r} in {file.name} (its profiles: {known})",
                )
            )
        return data
    chain: list[str] = []
    name: str | None = profile
    while name is not None:
        if name in chain:
            problems.append(Problem(f"profiles.{name}", "", "profiles inherit in a circle"))
            break
        body = profiles.get(name)
        if not isinstance(body, dict):
            where = _line(file, profiles, name)
            problems.append(Problem(f"profiles.{name}", where, "no such profile (a mapping)"))
            break
        chain.append(name)
        parent = body.get("inherits")
        name = str(parent) if parent is not None else None
    for name in reversed(chain):
        note = f" (profile {name})"
        _merge(data, profiles[name], "", file, note, sources, skip=("inherits",))
    return data


def _merge(
    into: dict[str, Any],
    over: dict[str, Any],
    prefix: str,
    file: Path,
    note: str,
    sources: dict[str, str],
    skip: tuple[str, ...] = (),
) -> None:
    for key, value in over.items():
        if key in skip:
            continue
        path = f"{prefix}{key}"
        sources[path] = _line(file, over, key) + note
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value, path + ".", file, note, sources)
        elif isinstance(value, dict):
            into[key] = {}
            _merge(into[key], value, path + ".", file, note, sources)
        else:
            into[key] = value
            if isinstance(value, list):
                lines = getattr(value, "lines", [])
                for i, item in enumerate(value):
                    line = lines[i] if i < len(lines) else getattr(value, "line", 1)
                    sources[f"{path}.{i}"] = f"{file.name}:{line}{note}"
                    if isinstance(item, dict):
                        for k in item:
                            sources[f"{path}.{i}.{k}"] = _line(file, item, k) + note


def _relative_to(data: dict[str, Any], folder: Path) -> None:
    def fix(value: Any) -> Any:
        if not isinstance(value, str) or "://" in value or value.startswith(("env:", "file:")):
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else (folder / path).resolve())

    for key in _PATH_KEYS:
        section, _, leaf = key.rpartition(".")
        holder = data.get(section) if section else data
        if isinstance(holder, dict) and leaf in holder:
            holder[leaf] = fix(holder[leaf])
    pipes = data.get("pipelines")
    if isinstance(pipes, dict):
        for body in pipes.values():
            if isinstance(body, dict) and "path" in body:
                body["path"] = fix(body["path"])


def _from_env(data: dict[str, Any], env: Mapping[str, str], sources: dict[str, str]) -> None:
    """``LAKEHOUSE_SERVER__PORT=9000`` sets ``server.port``; ``__`` separates the keys."""
    fields = set(Settings.model_fields)
    for name in sorted(env):
        if not name.startswith("LAKEHOUSE_"):
            continue
        path = ALIASES.get(name)
        if path is None:
            parts = name.removeprefix("LAKEHOUSE_").lower().split("__")
            if parts[0] not in fields or len(parts) < 2 and parts[0] not in ("warehouse", "format"):
                continue  # another of the platform's variables, not a setting
            path = ".".join(parts)
        keys = path.split(".")
        holder = data
        for key in keys[:-1]:
            if not isinstance(holder.get(key), dict):
                holder[key] = {}
            holder = holder[key]
        holder[keys[-1]] = _env_value(env[name])
        sources[path] = f"env {name}"


def _env_value(text: str) -> Any:
    if text[:1] in "[{":
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text
    return text


@dataclass
class Refs:
    """What ``env:`` and ``file:`` values are read from: the environment, and files
    relative to the settings file's folder (or the working folder, for a variable)."""

    env: Mapping[str, str]
    folder: Path
    sources: dict[str, str]
    problems: list[Problem]


def _resolve_secrets(value: Any, path: str, refs: Refs) -> Any:
    if isinstance(value, dict):
        for key in list(value):
            value[key] = _resolve_secrets(value[key], _join(path, key), refs)
        return value
    if isinstance(value, list):
        for i, item in enumerate(value):
            value[i] = _resolve_secrets(item, _join(path, i), refs)
        return value
    if not isinstance(value, str):
        return value
    env, sources, problems = refs.env, refs.sources, refs.problems
    where = sources.get(path, "")
    if value.startswith("env:"):
        name = value[4:].strip()
        if name not in env:
            problems.append(Problem(path, where, f"the environment variable {name} is not set"))
            return None
        sources[path] = f"{where} via env:{name}".strip()
        return env[name]
    if value.startswith("file:"):
        file = Path(value[5:].strip()).expanduser()
        if not file.is_absolute():
            file = (Path.cwd() if where.startswith("env ") else refs.folder) / file
        try:
            text = file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            problems.append(Problem(path, where, f"cannot read {file}: {exc.strerror}"))
            return None
        sources[path] = f"{where} via file:{file}".strip()
        return text
    return value


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _explain(exc: ValidationError, sources: dict[str, str]) -> list[Problem]:
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err["loc"]]
        path = ".".join(loc)
        where = ""
        probe = path
        while probe and not where:
            where = sources.get(probe, "")
            probe = probe.rpartition(".")[0]
        message = str(err["msg"]).removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            message = f"unknown key {loc[-1]!r}" + (
                f"; the keys here are: {', '.join(allowed)}" if allowed else ""
            )
        elif err["type"] == "literal_error":
            message = "not allowed; " + message.replace("Input should be", "give")
        elif err["type"] == "missing":
            message = "this key is required"
        out.append(Problem(path, where, message))
    return out


def _allowed_keys(loc: list[str]) -> list[str]:
    """The keys a mapping at ``loc`` may have (the model's fields)."""
    kind: Any = Settings
    for part in loc:
        kind = _unwrap(kind)
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            info = kind.model_fields.get(part)
            if info is None:
                return []
            kind = info.annotation
        else:
            args = typing.get_args(kind)
            kind = args[-1] if args else None
    kind = _unwrap(kind)
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        return list(kind.model_fields)
    return []


def _unwrap(kind: Any) -> Any:
    """``X | None`` -> ``X``."""
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        rest = [a for a in typing.get_args(kind) if a is not type(None)]
        return rest[0] if len(rest) == 1 else kind
    return kind
