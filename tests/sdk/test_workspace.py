"""The Workspace API against the emulator with the official SDK (databricks-sdk 0.162.0,
`w.workspace`): `mkdirs`, `upload` (the multipart form of `POST /api/2.0/workspace/import`),
`import_` (the JSON form), `download` (`direct_download=true`), `export`, `list`, `get_status` and
`delete`, with the errors the SDK raises for the service's codes.
"""

from __future__ import annotations

import base64
import io

import pytest
from databricks.sdk.errors import BadRequest, DatabricksError, InvalidParameterValue, PermissionDenied, ResourceAlreadyExists, ResourceDoesNotExist
from databricks.sdk.service.workspace import ExportFormat, ImportFormat, Language, ObjectType

HOME = "/Users/alice@example.com"


def test_mkdirs_upload_download_and_get_status_of_one_file(pat_client):
    w = pat_client("alice")
    folder = f"{HOME}/one"

    w.workspace.mkdirs(folder)
    w.workspace.upload(f"{folder}/app.yaml", b"command: [python, app.py]\n", format=ImportFormat.AUTO, overwrite=True)
    status = w.workspace.get_status(f"/Workspace{folder}/app.yaml")
    content = w.workspace.download(f"{folder}/app.yaml").read()

    assert status.object_type == ObjectType.FILE
    assert status.path == f"{folder}/app.yaml"
    assert status.size == len(b"command: [python, app.py]\n")
    assert status.object_id is not None and status.modified_at is not None
    assert content == b"command: [python, app.py]\n"
    assert w.workspace.get_status(folder).object_type == ObjectType.DIRECTORY


def test_uploading_an_app_of_several_files_lists_them_and_notebooks_keep_their_language(pat_client):
    w = pat_client("alice")
    root = f"{HOME}/multi"
    files = {
        "app.yaml": b"command: [python, app.py]\n",
        "app.py": b"print('hello')\n",
        "static/index.html": b"<h1>hi</h1>\n",
    }

    for name, data in files.items():
        w.workspace.mkdirs(f"{root}/{name}".rsplit("/", 1)[0])
        w.workspace.upload(f"{root}/{name}", io.BytesIO(data), format=ImportFormat.AUTO, overwrite=True)
    w.workspace.upload(f"{root}/notebook.py", b"# Databricks notebook source\nx = 1\n", format=ImportFormat.AUTO)
    w.workspace.import_(
        f"{root}/query", content=base64.b64encode(b"SELECT 1").decode(), language=Language.SQL, format=ImportFormat.SOURCE
    )
    top = {o.path: o for o in w.workspace.list(root)}
    everything = sorted(o.path for o in w.workspace.list(root, recursive=True))
    exported = w.workspace.export(f"{root}/query", format=ExportFormat.SOURCE)

    assert sorted(top) == [f"{root}/{n}" for n in ["app.py", "app.yaml", "notebook", "query", "static"]]
    assert top[f"{root}/static"].object_type == ObjectType.DIRECTORY
    assert top[f"{root}/notebook"].object_type == ObjectType.NOTEBOOK
    assert top[f"{root}/notebook"].language == Language.PYTHON
    assert top[f"{root}/query"].language == Language.SQL
    assert top[f"{root}/app.py"].object_type == ObjectType.FILE, "no notebook header: a file"
    assert everything == sorted(
        [f"{root}/{n}" for n in ["app.py", "app.yaml", "notebook", "query", "static/index.html"]]
    )
    assert base64.b64decode(exported.content) == b"SELECT 1"
    for name, data in files.items():
        assert w.workspace.download(f"{root}/{name}").read() == data


def test_upload_without_overwrite_refuses_an_existing_file_and_keeps_it(pat_client):
    w = pat_client("alice")
    path = f"{HOME}/keep.txt"
    w.workspace.upload(path, b"first", format=ImportFormat.AUTO)

    with pytest.raises(ResourceAlreadyExists):
        w.workspace.upload(path, b"second", format=ImportFormat.AUTO)

    assert w.workspace.download(path).read() == b"first"


def test_delete_is_recursive_only_when_asked(pat_client):
    w = pat_client("alice")
    root = f"{HOME}/tree"
    w.workspace.mkdirs(f"{root}/sub")
    w.workspace.upload(f"{root}/sub/f.txt", b"x", format=ImportFormat.AUTO)

    with pytest.raises(BadRequest) as refused:
        w.workspace.delete(root)
    w.workspace.delete(f"{root}/sub/f.txt")
    w.workspace.delete(f"{root}/sub")
    w.workspace.upload(f"{root}/g.txt", b"y", format=ImportFormat.AUTO)
    w.workspace.delete(root, recursive=True)

    assert refused.value.error_code == "DIRECTORY_NOT_EMPTY"
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.get_status(root)
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.delete(root)


def test_errors_the_sdk_raises(pat_client):
    w = pat_client("alice")

    with pytest.raises(ResourceDoesNotExist):
        w.workspace.upload("/Shared/no/such/dir/f.txt", b"x", format=ImportFormat.AUTO)
    with pytest.raises(ResourceDoesNotExist):
        list(w.workspace.list("/Shared/nothing"))
    with pytest.raises(ResourceDoesNotExist):
        w.workspace.download("/Shared/nothing")
    with pytest.raises(DatabricksError, match="format=ImportFormat.AUTO") as source_without_language:
        # SOURCE (the default) needs a language; the SDK re-raises with a hint in the message.
        w.workspace.upload(f"{HOME}/notes.txt", b"x")
    assert source_without_language.value.error_code == "INVALID_PARAMETER_VALUE"
    with pytest.raises(InvalidParameterValue):
        w.workspace.mkdirs("/Users/../x")
    with pytest.raises(PermissionDenied):
        w.workspace.delete(HOME, recursive=True)
