"""One storage layer for the lake, on a local folder or on S3.

Everything that touches the bucket goes through :class:`Lake`, built on obstore (the Rust
``object_store`` crate, the same one delta-rs uses), so a local folder and an S3 bucket behave
the same: listing with last-modified and ETag, reads, writes, conditional copies, deletes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import obstore
from obstore.store import LocalStore, S3Store

DEFAULT_LAKE = ".lakehouse"
DOWNLOAD_CHUNK_BYTES = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    last_modified: datetime
    etag: str
    size: int


class ObjectChanged(Exception):
    """The object is not the version we validated: someone re-uploaded it meanwhile."""


@dataclass(frozen=True)
class S3Credentials:
    """Static credentials, for the one client that does not read the usual chain (DuckDB)."""

    key_id: str
    secret: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Lake:
    """A bucket (``s3://bucket[/prefix]``) or a local folder, addressed by keys like ``raw/x``.

    boto3, obstore and delta-rs find credentials in the environment's usual chain; DuckDB is
    given ``credentials`` when there are static ones."""

    uri: str
    endpoint_url: str | None = None
    region: str | None = None
    credentials: S3Credentials | None = None

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    @property
    def move_keeps_identity(self) -> bool:
        """Whether a moved object keeps its ETag and modification time: a folder renames it
        (same inode, same time); S3 copies it (a new modification time)."""
        return not self.is_s3

    @cached_property
    def store(self) -> LocalStore | S3Store:
        if not self.is_s3:
            return LocalStore(self.uri, mkdir=True)
        parsed = urlparse(self.uri)
        config: dict[str, str] = {}
        if self.region:
            config["region"] = self.region
        if self.endpoint_url:
            config["endpoint"] = self.endpoint_url
        client_options = {"allow_http": True} if self.endpoint_url_is_http else None
        return S3Store(
            parsed.netloc,
            prefix=parsed.path.strip("/") or None,
            config=config,  # type: ignore[arg-type]
            client_options=client_options,  # type: ignore[arg-type]
        )

    @property
    def endpoint_url_is_http(self) -> bool:
        return bool(self.endpoint_url and self.endpoint_url.startswith("http://"))

    def url(self, key: str) -> str:
        """The full URI of a key, as delta-rs and DuckDB address it."""
        return f"{self.uri.rstrip('/')}/{key}"

    def storage_options(self) -> dict[str, str]:
        """delta-rs storage options: the same endpoint and region as every other client."""
        if not self.is_s3:
            return {}
        options: dict[str, str] = {}
        if self.region:
            options["AWS_REGION"] = self.region
        if self.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.endpoint_url
        if self.endpoint_url_is_http:
            options["AWS_ALLOW_HTTP"] = "true"
        return options

    # -- objects ---------------------------------------------------------------------------

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every object under ``prefix`` (paginated by the store; streamed, never all in memory)."""
        for batch in obstore.list(self.store, prefix=prefix, chunk_size=1000):
            for meta in batch:
                yield _info(meta)

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return _info(obstore.head(self.store, key))
        except FileNotFoundError:
            return None

    def read(self, key: str) -> tuple[bytes, ObjectInfo]:
        result = obstore.get(self.store, key)
        return bytes(result.bytes()), _info(result.meta)

    def download(self, key: str, directory: Path) -> tuple[Path, ObjectInfo]:
        """The object saved into ``directory`` under its own name, streamed (never whole in
        memory), and the metadata of the version saved. A folder's object is linked, not
        copied: the link holds that version whatever is later moved or uploaded in its place."""
        target = directory / PurePosixPath(key).name
        if not self.is_s3:
            linked = self._linked(key, target)
            if linked is not None:
                return target, linked
        result = obstore.get(self.store, key)
        with target.open("wb") as file:
            for chunk in result.stream(min_chunk_size=DOWNLOAD_CHUNK_BYTES):
                file.write(chunk)
        return target, _info(result.meta)

    def _linked(self, key: str, target: Path) -> ObjectInfo | None:
        """A hard link to a folder's object at ``target``, with the linked version's metadata
        (what the store says of the link: one inode, so the object's ETag); None when the
        folders are on different file systems (then it is copied)."""
        try:
            os.link(Path(self.uri) / key, target)
        except FileNotFoundError:
            raise  # gone: the caller looks for it again
        except OSError:
            return None
        return replace(_info(obstore.head(LocalStore(target.parent), target.name)), key=key)

    def write(self, key: str, data: bytes | Path) -> None:
        """Bytes, or a local file's content (uploaded in parts when large)."""
        obstore.put(self.store, key, data)

    def delete(self, key: str) -> None:
        obstore.delete(self.store, key)

    def move(self, source: str, target: str, *, expected_etag: str | None = None) -> None:
        """The object exists in at least one place at every instant: a folder renames it (one
        atomic step); S3 copies, verifies, then deletes the source. With ``expected_etag`` the
        move refuses to touch a source that changed (a newer upload of the same key is left
        for its own run)."""
        before = self.head(source)
        if before is None:
            raise FileNotFoundError(source)
        if expected_etag is not None and before.etag != expected_etag:
            raise ObjectChanged(f"{source} changed since it was read (ETag {before.etag})")
        if self.move_keeps_identity:
            obstore.rename(self.store, source, target, overwrite=True)
            return
        obstore.copy(self.store, source, target, overwrite=True)
        after = self.head(target)
        if after is None or after.size != before.size:
            raise OSError(f"copy of {source} to {target} did not verify; source kept")
        with contextlib.suppress(FileNotFoundError):  # a concurrent mover finished first
            obstore.delete(self.store, source)


def normalize_uri(uri: str) -> str:
    """``s3://bucket/prefix`` stays; a path or ``file://`` URI becomes an absolute path."""
    if uri.startswith("s3://"):
        return uri.rstrip("/")
    if uri.startswith("file://"):
        uri = urlparse(uri).path
    return str(Path(uri).expanduser().resolve())


def _info(meta: Mapping) -> ObjectInfo:
    return ObjectInfo(
        key=meta["path"],
        last_modified=meta["last_modified"],
        etag=(meta.get("e_tag") or "").strip('"'),
        size=meta["size"],
    )
