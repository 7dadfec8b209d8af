"""Files, volumes and table exists through the official SDK (`w.files`, `w.volumes`,
`w.tables.exists`) against the emulator.

`w.files` first tries presigned URLs (`create-download-url`, `?action=initiate-upload`); the
emulator answers those 501, and these tests check, through the emulator's request log, that the
SDK walks on to the plain Files API calls and that the bytes arrive intact, for small files and
for one of 50 MiB or more (the SDK's multipart threshold).
"""

from __future__ import annotations

import io
import os

import pytest

from databricks.sdk.errors import AlreadyExists, NotFound, PermissionDenied
from databricks.sdk.service.catalog import VolumeType

ROOT = "/Volumes/main/default/files"
FILES_PREFIX = "/api/2.0/fs/files"


def _files_calls(control, method: str):
    return [r for r in control.requests(FILES_PREFIX) if r["method"] == method]


def test_volumes_list_and_read_per_user(pat_client):
    alice, bob = pat_client("alice"), pat_client("bob")

    listed = list(alice.volumes.list(catalog_name="main", schema_name="default"))
    read = bob.volumes.read("main.default.files")

    assert [v.full_name for v in listed] == ["main.default.files"]
    assert listed[0].volume_type == VolumeType.MANAGED
    assert read.name == "files" and read.catalog_name == "main"
    with pytest.raises(PermissionDenied):
        list(bob.volumes.list(catalog_name="main", schema_name="sales"))
    with pytest.raises(NotFound):
        alice.volumes.read("main.default.nope")


def test_upload_download_metadata_and_delete(pat_client, control):
    w = pat_client("alice")
    path = f"{ROOT}/sdk dir/hello world.txt"

    w.files.upload(path, io.BytesIO(b"hello from the sdk"), overwrite=True)
    metadata = w.files.get_metadata(path)
    downloaded = w.files.download(path)
    content = downloaded.contents.read()

    assert content == b"hello from the sdk"
    assert metadata.content_length == len(content)
    assert metadata.content_type == "application/octet-stream"
    assert metadata.last_modified
    # The SDK sent the path percent-encoded, and walked past the presigned-URL call.
    assert any("sdk%20dir/hello%20world.txt" in r["path"] for r in _files_calls(control, "PUT"))
    assert any("create-download-url" in r["path"] for r in control.requests("/api/2.0/fs/create-download-url"))
    assert _files_calls(control, "GET")

    w.files.delete(path)
    with pytest.raises(NotFound):
        w.files.get_metadata(path)


def test_overwrite_false_raises_already_exists(pat_client):
    w = pat_client("alice")

    with pytest.raises(AlreadyExists):
        w.files.upload(f"{ROOT}/README.md", io.BytesIO(b"again"), overwrite=False)

    assert w.files.download(f"{ROOT}/README.md").contents.read().startswith(b"# Shared files")


def test_directories_create_list_and_delete(pat_client):
    w = pat_client("admin")
    w.files.create_directory(f"{ROOT}/made/by/sdk")
    for name in ("a.txt", "b.txt"):
        w.files.upload(f"{ROOT}/made/{name}", io.BytesIO(b"x"), overwrite=True)

    entries = list(w.files.list_directory_contents(f"{ROOT}/made", page_size=1))

    assert [(e.name, e.is_directory) for e in entries] == [("a.txt", False), ("b.txt", False), ("by", True)]
    assert entries[0].file_size == 1 and entries[0].last_modified
    w.files.delete_directory(f"{ROOT}/made/by/sdk")
    w.files.get_directory_metadata(f"{ROOT}/made/by")
    with pytest.raises(NotFound):
        w.files.get_directory_metadata(f"{ROOT}/made/by/sdk")
    with pytest.raises(NotFound):
        list(w.files.list_directory_contents(f"{ROOT}/nowhere"))


def test_writing_needs_write_access(pat_client):
    bob = pat_client("bob")

    assert bob.files.download(f"{ROOT}/README.md").contents.read()
    with pytest.raises(PermissionDenied):
        bob.files.upload(f"{ROOT}/bob.txt", io.BytesIO(b"x"), overwrite=True)
    with pytest.raises(PermissionDenied):
        bob.files.get_metadata("/Volumes/main/sales/reports/2025/q1.csv")


def test_a_file_over_the_multipart_threshold_falls_back_to_one_put(pat_client, control, tmp_path):
    # 50 MiB plus a little: the SDK tries a multipart upload first.
    size = 50 * 1024 * 1024 + 4096
    data = os.urandom(1024) * (size // 1024)
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    target = tmp_path / "back.bin"
    w = pat_client("alice")
    path = f"{ROOT}/big/big.bin"

    w.files.upload_from(path, str(source), overwrite=True)
    w.files.download_to(path, str(target), overwrite=True)

    assert target.stat().st_size == size
    assert target.read_bytes() == data
    initiated = [r for r in _files_calls(control, "POST") if "initiate-upload" in (r.get("query") or "")]
    puts = [r for r in _files_calls(control, "PUT") if r["status"] == 204]
    assert initiated, "the SDK tried a multipart upload first"
    assert len(puts) == 1, "then fell back to a single PUT"


def test_tables_exists(pat_client):
    alice, bob = pat_client("alice"), pat_client("bob")

    assert alice.tables.exists("main.sales.orders").table_exists is True
    assert bob.tables.exists("main.default.customers").table_exists is True
    assert bob.tables.exists("main.default.nope").table_exists is False
    with pytest.raises(PermissionDenied):
        bob.tables.exists("main.sales.orders")
