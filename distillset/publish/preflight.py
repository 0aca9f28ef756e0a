"""What must hold before the first paid call: the version could be published at all.

Settings are validated when they are read; this checks what only the world can tell: that the
storage location exists and takes a write (a local folder, or an S3 bucket), and that the license
policy lets this teacher and these sources be published. Found at the end of a paid run, either
would waste the run.
"""

from __future__ import annotations

import uuid

from distillset import storage
from distillset.publish.licenses import version_licenses
from distillset.publish.rows import check_name
from distillset.settings import LicensePolicy


class NotPublishableError(ValueError):
    """A version could not be published: the message says why, before anything is paid."""


def check_before_paying(
    storage_url: str,
    name: str,
    teacher_model: str,
    source_licenses: dict[str, str],
    *,
    policy: LicensePolicy,
    storage_options: dict | None = None,
) -> None:
    """Raise :class:`NotPublishableError` when the version could not be published.

    Args:
        storage_url: where versions go (``DISTILLSET_STORAGE_URL``).
        name: the training set's name.
        teacher_model: the teacher (its terms are checked against ``policy``).
        source_licenses: source file -> license of the prompts about to be answered.
        policy: the license policy.
        storage_options: fsspec options for S3.
    """
    try:
        check_name(name)
    except ValueError as exc:
        raise NotPublishableError(str(exc)) from None
    _, blocking = version_licenses(source_licenses, [teacher_model], policy)
    if blocking:
        raise NotPublishableError("license policy blocks publication: " + " | ".join(blocking))
    fs, root = storage.filesystem(storage_url, storage_options)
    probe = storage.join(root, f".distillset-write-probe-{uuid.uuid4().hex}")
    try:
        if storage.is_local(fs):
            fs.makedirs(root, exist_ok=True)
        fs.pipe_file(probe, b"probe")
        fs.rm(probe)
    except Exception as exc:  # noqa: BLE001 - any failure means: cannot publish there
        raise NotPublishableError(
            f"cannot write to the storage location {storage_url} ({type(exc).__name__}: {exc}); "
            "check DISTILLSET_STORAGE_URL (the folder or bucket must exist and be writable)"
        ) from exc
