"""Reaching an S3-compatible store from ingestion: ``pyarrow.fs.S3FileSystem`` made from
the warehouse's object-store options (object_store's names, as ``storage_options`` gives
them to Delta) with the environment's variables of the same names filling the gaps, and
the store's failures told as ``ObjectStoreError``: a bucket that is not there, credentials
refused, an endpoint that does not answer."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from lakehouse.errors import LakehouseError

ENDPOINT = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT", "AWS_ENDPOINT_URL_S3")
REGION = ("AWS_REGION", "AWS_DEFAULT_REGION")
CONNECT_TIMEOUT = 5.0  # seconds to open a connection to the store
REQUEST_TIMEOUT = 60.0  # seconds a request may wait for data
ATTEMPTS = 3  # tries of a request that failed on the network or a 5xx
WHERE = "storage_options in lakehouse.yaml or the environment"


class ObjectStoreError(LakehouseError):
    """The object store failed or refused a request: nothing of the request was used."""


_UNREACHABLE = ("NETWORK_CONNECTION", "curlCode", "connect to server", "resolve host", "timed out")
_REFUSED = (
    "ACCESS_DENIED",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "INVALID_ACCESS_KEY",
    "SIGNATURE_DOES_NOT_MATCH",
    "Forbidden",
    "HTTP response code: 403",
)
_NO_BUCKET = ("NoSuchBucket", "NO_SUCH_BUCKET")


def setting(options: Mapping[str, str], *names: str) -> str | None:
    """The first of ``names`` the options (any case) or else the environment set."""
    given = {key.upper(): value for key, value in options.items()}
    for name in names:
        value = given.get(name) or os.environ.get(name)
        if value:
            return value
    return None


def s3_filesystem(options: Mapping[str, str]) -> tuple[Any, str]:
    """The store's file system and its endpoint as said in messages."""
    import pyarrow.fs as pafs

    kwargs: dict[str, Any] = {
        "connect_timeout": CONNECT_TIMEOUT,
        "request_timeout": REQUEST_TIMEOUT,
        "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=ATTEMPTS),
    }
    region = setting(options, *REGION)
    if region:
        kwargs["region"] = region
    key, secret = setting(options, "AWS_ACCESS_KEY_ID"), setting(options, "AWS_SECRET_ACCESS_KEY")
    if key and secret:
        kwargs.update(access_key=key, secret_key=secret)
        token = setting(options, "AWS_SESSION_TOKEN")
        if token:
            kwargs["session_token"] = token
    endpoint = setting(options, *ENDPOINT)
    if endpoint:
        scheme, sep, host = endpoint.partition("://")
        if not sep:  # a bare host:port
            scheme, host = "https", endpoint
            if (setting(options, "AWS_ALLOW_HTTP") or "").lower() in ("true", "1", "yes"):
                scheme = "http"
        kwargs.update(endpoint_override=host.rstrip("/"), scheme=scheme)
    shown = endpoint or f"AWS S3 ({region or 'the default region'})"
    try:
        return pafs.S3FileSystem(**kwargs), shown
    except (OSError, ValueError, TypeError) as exc:
        raise LakehouseError(
            f"the object-store options do not make an S3 client: {_first_line(exc)}",
            f"check AWS_ENDPOINT_URL, AWS_REGION and the keys ({WHERE})",
        ) from exc


def bucket_check(fs: Any, bucket: str, endpoint: str) -> None:
    """Fails with the cause and the fix unless the bucket is there and can be reached."""
    import pyarrow.fs as pafs

    with reached(f"bucket {bucket}", endpoint):
        info = fs.get_file_info(bucket)
    if info.type == pafs.FileType.NotFound:
        raise ObjectStoreError(
            f"no bucket {bucket} at {endpoint}",
            "create the bucket, or correct the landing folder's s3://BUCKET/PREFIX",
        )


@contextmanager
def reached(what: str, endpoint: str) -> Iterator[None]:
    """The store's failures on ``what`` within, as ``ObjectStoreError`` naming the cause."""
    try:
        yield
    except LakehouseError:
        raise
    except OSError as exc:
        raise explained(exc, what, endpoint) from exc


def explained(exc: OSError, what: str, endpoint: str) -> ObjectStoreError:
    text = str(exc)
    if any(sign in text for sign in _NO_BUCKET):
        return ObjectStoreError(
            f"no bucket for {what} at {endpoint}",
            "create the bucket, or correct the landing folder's s3://BUCKET/PREFIX",
        )
    if any(sign in text for sign in _REFUSED):
        return ObjectStoreError(
            f"the object store at {endpoint} refused the credentials for {what}: "
            f"{_first_line(exc)}",
            f"check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY ({WHERE}) and that they "
            "may list and read the bucket",
        )
    if any(sign in text for sign in _UNREACHABLE):
        return ObjectStoreError(
            f"the object store at {endpoint} does not answer ({what}): {_first_line(exc)}",
            f"check that it is running and AWS_ENDPOINT_URL ({WHERE})",
        )
    if isinstance(exc, FileNotFoundError):
        return ObjectStoreError(f"{what} is not in the object store at {endpoint} (any more)")
    return ObjectStoreError(f"could not read {what} from the object store at {endpoint}: {text}")


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
