"""Which license a prompt file is under: its ``<file>.license`` sidecar, else the nearest
``licenses.json`` (file names relative to that json's folder) in its folder or a parent folder up
to the root that was read, else the default license."""

from __future__ import annotations

import json
import posixpath

import fsspec

LICENSE_SIDECAR_SUFFIX = ".license"
LICENSES_INDEX = "licenses.json"


class LicenseResolver:
    """Finds each file's license: its sidecar, else the nearest ``licenses.json``, else the default."""

    def __init__(self, fs: fsspec.AbstractFileSystem, base: str, listed: set[str], default_license: str):
        self.fs = fs
        self.base = base
        self.listed = listed
        self.default_license = default_license
        self._indexes: dict[str, dict[str, str]] = {}

    def license_of(self, path: str) -> str:
        sidecar = path + LICENSE_SIDECAR_SUFFIX
        if sidecar in self.listed:
            for line in self.fs.cat_file(sidecar).decode("utf-8", errors="replace").splitlines():
                if line.strip():
                    return line.strip()
        folder = posixpath.dirname(path)
        while True:
            index_path = posixpath.join(folder, LICENSES_INDEX)
            if index_path in self.listed:
                entry = self._index(index_path).get(relative(path, folder))
                if entry:
                    return entry
            if folder == self.base or not folder.startswith(self.base):
                return self.default_license
            folder = posixpath.dirname(folder)

    def _index(self, index_path: str) -> dict[str, str]:
        if index_path not in self._indexes:
            try:
                index = json.loads(self.fs.cat_file(index_path).decode("utf-8-sig"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ValueError(f"{index_path!r} is not valid JSON: {exc}") from None
            if not isinstance(index, dict) or not all(isinstance(v, str) for v in index.values()):
                raise ValueError(f"{index_path!r} must map file names to license strings")
            self._indexes[index_path] = {posixpath.normpath(k): v.strip() for k, v in index.items()}
        return self._indexes[index_path]


def relative(path: str, folder: str) -> str:
    return path[len(folder) :].lstrip("/") if folder else path
