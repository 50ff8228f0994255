"""The storages and a worker's local copies of stored files.

Every stored file is handed out as a signed, expiring link through the storage's own `url()`:
`SignedFileSystemStorage` (local files, the embedded default) signs a `/files/<token>` link that
`jobs.views.signed_media` checks; S3 presigns its own. Callers just use `field.url` or
`default_storage.url(key)`. Such a link is a bearer link: whoever holds it gets the file until it
expires (SIGNED_URL_EXPIRE_SECONDS, an hour: long enough for players and exports). The admin's own
pages pass `expire=settings.ADMIN_SIGNED_URL_EXPIRE_SECONDS`, so a link copied out of them dies sooner.


Settings build `STORAGES["default"]` from `s3_backend(env)` and `s3_options(env)`, so a test can
point the same options at its own endpoint. `PublicS3Storage` differs from django-storages'
`S3Storage` only in where links point: workers talk to the bucket on an inside address
(`AWS_S3_ENDPOINT_URL`, e.g. http://minio:9000) while browsers get links signed for the public one
(`AWS_S3_PUBLIC_ENDPOINT_URL`). A SigV4 signature covers the host, so the link must be signed for
the address the browser uses; presigning is local computation, the public address is never called.
"""

import contextlib
import shutil
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path

from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError
from django.conf import settings as django_settings
from django.core import signing
from django.core.exceptions import ImproperlyConfigured
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from storages.backends.s3 import S3Storage
from storages.utils import clean_name

MIB = 1024 * 1024


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {raw!r}") from None


def s3_backend(env: Mapping[str, str]) -> str:
    """The storage class: django-storages' own, or ours when links need a public endpoint."""
    if (env.get("AWS_S3_PUBLIC_ENDPOINT_URL") or "").strip():
        return "accounts.storage.PublicS3Storage"
    return "storages.backends.s3.S3Storage"


def s3_options(env: Mapping[str, str]) -> dict:
    """OPTIONS of the S3 storage from AWS_* variables (django-storages' names where it has one)."""
    options = {
        "bucket_name": env.get("AWS_STORAGE_BUCKET_NAME", ""),
        "endpoint_url": env.get("AWS_S3_ENDPOINT_URL") or None,
        "custom_domain": False,
        "region_name": env.get("AWS_S3_REGION_NAME") or None,
        "access_key": env.get("AWS_ACCESS_KEY_ID") or None,
        "secret_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
        "querystring_auth": True,
        "querystring_expire": _env_int(env, "SIGNED_URL_EXPIRE_SECONDS", 3600),
        "file_overwrite": True,
        "default_acl": None,
        # Downloads go to a temporary file on disk, never wholly into memory.
        "max_memory_size": 8 * MIB,
        # S3-compatible servers (MinIO, OSS) reject boto3's default request checksums.
        "client_config": Config(
            s3={"addressing_style": env.get("AWS_S3_ADDRESSING_STYLE") or "path"},
            signature_version=env.get("AWS_S3_SIGNATURE_VERSION") or "s3v4",
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            connect_timeout=_env_int(env, "AWS_S3_CONNECT_TIMEOUT_S", 10),
            read_timeout=_env_int(env, "AWS_S3_READ_TIMEOUT_S", 60),
            retries={"max_attempts": _env_int(env, "AWS_S3_MAX_ATTEMPTS", 5), "mode": "standard"},
        ),
        # Files above the threshold upload (and download) in parts of `chunksize`, several at once.
        "transfer_config": TransferConfig(
            multipart_threshold=_env_int(env, "AWS_S3_MULTIPART_THRESHOLD_MB", 16) * MIB,
            multipart_chunksize=_env_int(env, "AWS_S3_MULTIPART_CHUNKSIZE_MB", 16) * MIB,
            max_concurrency=_env_int(env, "AWS_S3_MAX_CONCURRENCY", 4),
        ),
    }
    public = (env.get("AWS_S3_PUBLIC_ENDPOINT_URL") or "").strip()
    if public:
        options["public_endpoint_url"] = public
    return options


class PublicS3Storage(S3Storage):
    """S3Storage whose links are signed for `public_endpoint_url` instead of `endpoint_url`."""

    def __init__(self, **settings):
        super().__init__(**settings)
        self._public_clients = threading.local()

    def get_default_settings(self):
        return {**super().get_default_settings(), "public_endpoint_url": None}

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_public_clients", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        self._public_clients = threading.local()

    def _public_client(self):
        client = getattr(self._public_clients, "client", None)
        if client is None:
            client = self._create_session().client(
                "s3",
                region_name=self.region_name,
                endpoint_url=self.public_endpoint_url,
                config=self.client_config,
                verify=self.verify,
            )
            self._public_clients.client = client
        return client

    def url(self, name, parameters=None, expire=None, http_method=None):
        if not self.public_endpoint_url or self.custom_domain or not self.querystring_auth:
            return super().url(name, parameters=parameters, expire=expire, http_method=http_method)
        params = {
            **(parameters or {}),
            "Bucket": self.bucket_name,
            "Key": self._normalize_name(clean_name(name)),
        }
        return self._public_client().generate_presigned_url(
            "get_object",
            Params=params,
            ExpiresIn=self.querystring_expire if expire is None else expire,
            HttpMethod=http_method,
        )


MEDIA_SIGNING_SALT = "batchvideo.media"


class SignedFileSystemStorage(FileSystemStorage):
    """Local files whose links carry a signed token valid for `expire` seconds (at most, and by
    default, SIGNED_URL_EXPIRE_SECONDS), so API clients and browsers fetch them without an admin
    session and nobody can guess one. `expire` as S3Storage.url takes it."""

    def url(self, name, expire: int | None = None):
        if not name:
            return ""
        lifetime = django_settings.SIGNED_URL_EXPIRE_SECONDS if expire is None else expire
        token = signing.TimestampSigner(salt=MEDIA_SIGNING_SALT).sign_object(
            {"key": name, "max_age": lifetime}
        )
        return reverse("signed-media", args=[token])


def signed_key(token: str) -> str:
    """The storage key inside a local signed link; raises signing.BadSignature when expired or forged."""
    signer = signing.TimestampSigner(salt=MEDIA_SIGNING_SALT)
    payload = signer.unsign_object(token)  # the signature only
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("key"), str)
        or not isinstance(payload.get("max_age"), int)
    ):
        raise signing.BadSignature("not a link to a stored file")
    # A lowered setting shortens the links already handed out too.
    signer.unsign(token, max_age=min(payload["max_age"], django_settings.SIGNED_URL_EXPIRE_SECONDS))
    return payload["key"]


def storage_download(storage, key: str, target: Path) -> Path:
    """Copy a stored file to `target` through a unique temporary name, so a copy interrupted
    half-way never looks complete. S3 downloads go straight to disk, in parallel ranges."""
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with _fresh_folder(part) as out:
            if isinstance(storage, S3Storage):
                out.close()  # boto3 writes the file itself; it exists now, so its folder stays
                obj = storage.bucket.Object(storage._normalize_name(clean_name(key)))
                try:
                    obj.download_file(str(part), Config=storage.transfer_config)
                except ClientError as error:
                    if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                        raise FileNotFoundError(f"{key} is not in the bucket") from error
                    raise
            else:
                with storage.open(key, "rb") as source:
                    shutil.copyfileobj(source, out, length=MIB)
        part.replace(target)
    finally:
        part.unlink(missing_ok=True)
    return target


def storage_put(storage, local_path: Path, key: str, *, replace: bool = True) -> bool:
    """Store a local file under exactly `key`, whole or not at all: a reader sees the old file or
    the new one, never a part, and nothing is deleted first. Returns whether this call wrote it.

    `replace=False` keeps a file already there (another writer's: a content-addressed chunk is the
    same whoever made it). Local files are written under a temporary name beside the key, then
    renamed over it (or hard-linked to it, which fails when it exists); S3 replaces an object in
    one request."""
    if not isinstance(storage, FileSystemStorage):
        if not replace and storage.exists(key):
            return False
        with open(local_path, "rb") as handle:
            storage.save(key, File(handle, name=Path(local_path).name))
        return True
    target = Path(storage.path(key))
    part = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        with _fresh_folder(part) as out, open(local_path, "rb") as source:
            shutil.copyfileobj(source, out, length=MIB)
        if storage.file_permissions_mode is not None:
            part.chmod(storage.file_permissions_mode)
        if replace:
            part.replace(target)
            return True
        try:
            target.hardlink_to(part)
        except FileExistsError:
            return False
        return True
    finally:
        part.unlink(missing_ok=True)


@contextlib.contextmanager
def _fresh_folder(path: Path):
    """`path` opened for writing, its folder made first; made again if a clean-up removed it, empty,
    between the two (a work-cache prune removes empty folders)."""
    for tries_left in (1, 0):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            handle = open(path, "wb")
        except FileNotFoundError:
            if not tries_left:
                raise
            continue
        with handle:
            yield handle
        return


def storage_local_copy(storage, key: str, folder: Path) -> Path:
    """A path on this machine holding the stored file: the file itself for local storage,
    else a download into `folder` (replaced when its size differs from the stored one)."""
    try:
        return Path(storage.path(key))
    except NotImplementedError:
        pass
    target = Path(folder) / Path(key).name
    if not target.exists() or target.stat().st_size != storage.size(key):
        storage_download(storage, key, target)
    return target
