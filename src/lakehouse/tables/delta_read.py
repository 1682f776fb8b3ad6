"""Reading Delta tables as a query engine does: a version opened with the reason it cannot
be when it cannot, the newest version followed with two file look-ups a query, a scan
through delta-rs for storage the engine does not read itself, commit times, and the
transaction identifiers old versions held."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Hashable

import pyarrow as pa
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from deltalake.exceptions import TableNotFoundError as DeltaTableNotFound

from lakehouse.errors import SQLError, TableNotFoundError, VersionNotFoundError
from lakehouse.names import TableName
from lakehouse.storage import Locations
from lakehouse.tables import log
from lakehouse.tables.format import Latest
from lakehouse.tables.snapshot import (
    UnsupportedFeatureError,
    is_local,
    local_path,
    refused_features,
)


def load(where: Locations, name: TableName, version: int | None) -> DeltaTable:
    """The table at ``version`` (None: the latest). Only the log up to ``version`` is read,
    so an old version stays readable when a later commit is not."""
    uri = where.table_uri(name)
    if version is not None and version < 0:
        raise VersionNotFoundError(
            f"{name} has no version {version}", f"see `lakehouse history {name}`"
        )
    try:
        return DeltaTable(uri, version=version, storage_options=where.storage_options)
    except DeltaTableNotFound as exc:
        if version is None or not DeltaTable.is_deltatable(
            uri, storage_options=where.storage_options
        ):
            raise TableNotFoundError(str(name)) from exc
        raise _version_error(where, name, version, exc) from exc
    except DeltaError as exc:
        if version is None:
            raise unreadable(str(name), exc) from exc
        raise _version_error(where, name, version, exc) from exc


def unreadable(name: str, exc: Exception) -> Exception:
    """delta-rs's refusal to load a table, said in Lakehouse's terms."""
    features = refused_features(exc)
    if features:
        return UnsupportedFeatureError(name, features)
    return SQLError(f"{name} cannot be read: {exc}", "check the table's _delta_log")


def _latest_version(where: Locations, uri: str) -> int | None:
    """The newest commit, whether or not delta-rs can open it."""
    if is_local(uri):
        try:
            names = os.listdir(os.path.join(local_path(uri), "_delta_log"))
        except OSError:
            return None
        found = [int(n[:20]) for n in names if re.fullmatch(r"\d{20}\.json", n)]
        return max(found, default=None)
    try:
        return int(DeltaTable(uri, storage_options=where.storage_options).version())
    except DeltaError:
        return None


def _version_error(where: Locations, name: TableName, version: int, exc: Exception) -> Exception:
    """Why ``version`` of ``name`` did not load: past the latest, or unreadable."""
    latest = _latest_version(where, where.table_uri(name))
    if latest is not None and version > latest:
        return VersionNotFoundError(
            f"{name} has no version {version} (latest is {latest})",
            f"see `lakehouse history {name}`",
        )
    refused = unreadable(str(name), exc)
    if isinstance(refused, UnsupportedFeatureError):
        return refused
    return VersionNotFoundError(
        f"{name} version {version} cannot be read any more: {exc}",
        "its files or log were removed by vacuum or log cleanup",
    )


def scan(handle: DeltaTable) -> pa.Table:
    reader = pa.RecordBatchReader.from_stream(handle.scan())
    return pa.Table.from_batches(list(reader), reader.schema)


def commit_times(where: Locations, name: TableName) -> list[dict[str, int]]:
    try:
        commits = load(where, name, None).history()
    except UnsupportedFeatureError:
        uri = where.table_uri(name)
        if not is_local(uri):
            raise
        # The latest version cannot be opened; the commits' own times still tell.
        return log.commit_times(local_path(uri))
    return [
        {"version": int(c["version"]), "timestamp": int(c.get("timestamp", 0))} for c in commits
    ]


def transactions_at(
    where: Locations, name: TableName, version: int, apps: list[str]
) -> dict[str, int | None] | None:
    try:
        old = load(where, name, version)
    except VersionNotFoundError:
        return None  # the log of that version is gone
    return {app: old.transaction_version(app) for app in apps}


def transactions_after(handle: DeltaTable, version: int) -> set[str]:
    """Read from the log's commits; a table elsewhere than on a local disk, or whose
    commits were cleaned up, gives what it can."""
    if not is_local(handle.table_uri):
        return set()
    folder = os.path.join(local_path(handle.table_uri), "_delta_log")
    found: set[str] = set()
    for number in range(version + 1, handle.version() + 1):
        try:
            with open(os.path.join(folder, f"{number:020d}.json"), encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            if '"txn"' in line:
                txn = json.loads(line).get("txn")
                if txn and txn.get("appId"):
                    found.add(txn["appId"])
    return found


class DeltaLatest(Latest[DeltaTable]):
    """A table's newest version. For a local table a check costs two file look-ups in its
    log, not delta-rs listing the log (0.5 ms a query): the handle's own commit file is
    still the one it was loaded from, and no next commit exists. A table dropped and made
    again under the same name is opened afresh."""

    def __init__(self, where: Locations, name: TableName) -> None:
        self._where = where
        self._name = name
        uri = where.table_uri(name)
        self._local = is_local(uri)
        self._log = os.path.join(local_path(uri), "_delta_log")
        self._handle: DeltaTable | None = None
        self._commit: tuple[int, int] | None = None  # the handle's commit file

    def newest(self) -> tuple[DeltaTable, bool]:
        handle, replaced = self._handle, False
        if handle is not None and self._local:
            now = self._commit_file(handle.version())
            if self._commit is not None and now == self._commit:
                if not os.path.exists(self._commit_path(handle.version() + 1)):
                    return handle, False
                handle.update_incremental()
            else:  # its commit is gone or another file: not the table it was
                handle, replaced = None, True
        elif handle is not None:
            handle.update_incremental()
        if handle is None:
            handle = self._handle = load(self._where, self._name, None)
        if self._local:
            self._commit = self._commit_file(handle.version())
        return handle, replaced

    def stamp(self, version: int | None) -> Hashable:
        if self._local:
            try:
                inode: int | None = os.stat(self._log).st_ino
            except OSError:
                inode = None  # dropped meanwhile: never fresh
            return ("log", inode, version)
        return ("remote", version)

    def fresh(self, stamp: Hashable) -> bool:
        assert isinstance(stamp, tuple)
        if stamp[0] == "log":
            try:
                inode = os.stat(self._log).st_ino
            except OSError:
                return False
            version = stamp[2]
            return (
                inode == stamp[1]
                and version is not None
                and not os.path.exists(self._commit_path(version + 1))
            )
        if self._handle is None:
            return False
        self._handle.update_incremental()
        return bool(self._handle.version() == stamp[1])

    def _commit_path(self, version: int) -> str:
        return os.path.join(self._log, f"{version:020d}.json")

    def _commit_file(self, version: int) -> tuple[int, int] | None:
        """Which file holds a version's commit (inode, modification time), None if none."""
        try:
            info = os.stat(self._commit_path(version))
        except OSError:
            return None
        return info.st_ino, info.st_mtime_ns


def last_checkpoint(where: Locations, name: TableName) -> int | None:
    """The version ``_delta_log/_last_checkpoint`` names; None without one."""
    from deltalake.fs import DeltaStorageHandler

    uri = where.table_uri(name)
    try:
        if is_local(uri):
            path = os.path.join(local_path(uri), "_delta_log", "_last_checkpoint")
            with open(path, encoding="utf-8") as f:
                text = f.read()
        else:
            store = DeltaStorageHandler(uri, where.storage_options)
            text = store.open_input_file("_delta_log/_last_checkpoint").read().decode()
        return int(json.loads(text.splitlines()[0])["version"])
    except (OSError, ValueError, KeyError, IndexError, DeltaError):
        return None


def _readable(where: Locations, name: TableName, version: int) -> bool:
    """Whether every data file of ``version`` is still there."""
    try:
        handle = load(where, name, version)
    except (VersionNotFoundError, SQLError):
        return False
    uris = handle.file_uris()
    if not is_local(handle.table_uri):
        return True  # a remote store is not listed file by file here
    return all(os.path.exists(local_path(u)) for u in uris)


def oldest_readable(where: Locations, name: TableName) -> int | None:
    """The oldest version from which on every version can be read: searched by halves, as
    vacuum removes the files of the oldest versions first."""
    latest = _latest_version(where, where.table_uri(name))
    if latest is None or not _readable(where, name, latest):
        return None
    low, high = 0, latest  # high is readable
    while low < high:
        middle = (low + high) // 2
        if _readable(where, name, middle):
            high = middle
        else:
            low = middle + 1
    return high
