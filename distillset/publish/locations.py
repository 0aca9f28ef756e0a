"""Locations as a published version shows them: never an absolute local path.

A version travels (to a hub, to another machine); the folder it was built in means nothing there
and tells a reader about the builder's machine. Source files are shown relative to the prompts
location they were read from; a local folder is shown relative to the working directory when it
is inside it, else by its last component; ``s3://`` and other URLs are shown as they are.
"""

from __future__ import annotations

import os
import posixpath
from urllib.parse import urlsplit


def _is_url(text: str) -> bool:
    scheme = urlsplit(text).scheme
    return len(scheme) > 1 and scheme != "file"


def _local_path(text: str) -> str:
    return os.path.abspath(urlsplit(text).path if text.startswith("file://") else text)


def public_location(location: str | None) -> str | None:
    """``location`` with no absolute local path: relative to the working directory, or its last component."""
    if not location:
        return location
    if _is_url(location):
        return location
    path = _local_path(location)
    cwd = os.getcwd()
    if path == cwd:
        return "."
    if path.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(path, cwd).replace(os.sep, "/")
    return os.path.basename(path.rstrip(os.sep)) or path


def relative_source(source_file: str | None, prompts_url: str | None) -> str | None:
    """``source_file`` relative to the prompts location it was read from (``public_location`` otherwise)."""
    if not source_file:
        return source_file
    if prompts_url:
        if _is_url(source_file) and _is_url(prompts_url):
            root = prompts_url.rstrip("/") + "/"
            if source_file.startswith(root):
                return source_file[len(root) :]
        elif not _is_url(source_file) and not _is_url(prompts_url):
            root, path = _local_path(prompts_url), _local_path(source_file)
            if path.startswith(root.rstrip(os.sep) + os.sep):
                return os.path.relpath(path, root).replace(os.sep, "/")
    if _is_url(source_file):
        return source_file
    path = _local_path(source_file)
    if os.path.isabs(source_file) or source_file.startswith("file://"):
        return posixpath.basename(path.replace(os.sep, "/"))
    return source_file
