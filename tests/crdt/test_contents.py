"""ContentsManager against a real folder and a real SQLite file."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine

from crdt.contents import ContentsManager, Entry, metadata, new_notebook
from crdt.errors import AlreadyExists, InvalidNotebook, InvalidPath, NotebookNotFound
from crdt.notebook_io import atomic_write, parse_notebook, serialize_notebook

Snapshot = dict[str, tuple[str, Any]]


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    metadata.create_all(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    return root


@pytest.fixture
def cm(root: Path, engine: Engine) -> ContentsManager:
    return ContentsManager(root, engine)


@pytest.fixture
def outside(tmp_path: Path, root: Path) -> Path:
    """A folder next to the root with a secret notebook, reachable from the root by symlinks."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.ipynb").write_bytes(serialize_notebook(new_notebook()))
    (root / "escape").symlink_to(outside, target_is_directory=True)
    (root / "leak.ipynb").symlink_to(outside / "secret.ipynb")
    return outside


def notebook_bytes(source: str = "print(1)") -> bytes:
    nb = new_notebook()
    nb["cells"][0]["source"] = source
    return serialize_notebook(nb)


def snapshot(top: Path) -> Snapshot:
    """Every path under ``top`` (but the database) with its kind and content."""
    tree: Snapshot = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = str(path.relative_to(top))
            if rel.startswith("db.sqlite"):
                continue
            if path.is_symlink():
                tree[rel] = ("link", os.readlink(path))
            elif path.is_dir():
                tree[rel] = ("dir", None)
            else:
                tree[rel] = ("file", path.read_bytes())
    return tree


# ---- creating, listing, reading ------------------------------------------------------


async def test_new_notebook_is_an_empty_python_notebook(cm: ContentsManager, root: Path) -> None:
    entry = await cm.create_notebook("Untitled.ipynb")

    assert entry.name == "Untitled.ipynb" and entry.path == "Untitled.ipynb"
    assert entry.type == "notebook"
    assert entry.id is not None and len(entry.id) == 32 and int(entry.id, 16) >= 0
    nb = parse_notebook((root / "Untitled.ipynb").read_bytes())  # validates
    assert (nb["nbformat"], nb["nbformat_minor"]) == (4, 5)
    assert [(c["cell_type"], c["source"]) for c in nb["cells"]] == [("code", "")]
    assert nb["cells"][0]["id"]
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    assert await cm.list_dir() == [entry]
    assert await cm.read_bytes(entry.id) == (root / "Untitled.ipynb").read_bytes()
    assert await cm.path_for_id(entry.id) == "Untitled.ipynb"
    assert await cm.locate(entry.id) == root / "Untitled.ipynb"
    assert await cm.id_for_path("Untitled.ipynb") == entry.id


async def test_create_notebook_with_content(cm: ContentsManager, root: Path) -> None:
    nb = new_notebook()
    nb["cells"][0]["source"] = "x = 1"

    entry = await cm.create_notebook("a.ipynb", nb)

    assert entry.id is not None
    stored = parse_notebook(await cm.read_bytes(entry.id))
    assert [c["source"] for c in stored["cells"]] == ["x = 1"]


async def test_create_notebook_refusals_write_nothing(cm: ContentsManager, root: Path) -> None:
    await cm.create_notebook("a.ipynb", new_notebook())
    before = snapshot(root)

    with pytest.raises(AlreadyExists):
        await cm.create_notebook("a.ipynb")
    with pytest.raises(InvalidNotebook):
        await cm.create_notebook("b.ipynb", {"nbformat": 4, "cells": "nope"})
    with pytest.raises(InvalidNotebook):
        await cm.create_notebook("b.ipynb", {"nbformat": 3})
    with pytest.raises(InvalidPath, match=r"\.ipynb"):
        await cm.create_notebook("b.txt")
    with pytest.raises(NotebookNotFound, match="missing"):
        await cm.create_notebook("missing/b.ipynb")

    assert snapshot(root) == before
    assert [e.name for e in await cm.list_dir()] == ["a.ipynb"]


async def test_list_dir_folders_first_then_names_hidden_skipped(
    cm: ContentsManager, root: Path
) -> None:
    (root / "b.ipynb").write_bytes(notebook_bytes())
    (root / "A.ipynb").write_bytes(notebook_bytes())
    (root / "notes.txt").write_text("hello")
    (root / "zdir").mkdir()
    (root / "adir").mkdir()
    (root / ".hidden.ipynb").write_bytes(notebook_bytes())
    (root / ".ipynb_checkpoints").mkdir()
    (root / "dangling").symlink_to(root / "nowhere")
    (root / "back\\slash.ipynb").write_bytes(notebook_bytes())

    entries = await cm.list_dir()

    assert [(e.name, e.type) for e in entries] == [
        ("adir", "directory"),
        ("zdir", "directory"),
        ("A.ipynb", "notebook"),
        ("b.ipynb", "notebook"),
        ("notes.txt", "file"),
    ]
    by_name = {e.name: e for e in entries}
    assert by_name["notes.txt"].size == 5 and by_name["notes.txt"].id is None
    assert by_name["adir"].size is None and by_name["adir"].id is None
    assert by_name["b.ipynb"].size == len(notebook_bytes())
    assert by_name["b.ipynb"].last_modified == (root / "b.ipynb").stat().st_mtime
    # ids were assigned on listing and are stable
    assert by_name["b.ipynb"].id == await cm.id_for_path("b.ipynb")
    assert await cm.list_dir() == entries


async def test_make_dir_and_get(cm: ContentsManager, root: Path) -> None:
    made = await cm.make_dir("sub")
    nested = await cm.make_dir("sub/inner")

    assert (made.name, made.path, made.type) == ("sub", "sub", "directory")
    assert nested.path == "sub/inner" and (root / "sub" / "inner").is_dir()
    assert await cm.get("sub/inner") == nested
    assert (await cm.get("")).type == "directory"
    assert [e.path for e in await cm.list_dir("sub")] == ["sub/inner"]
    with pytest.raises(AlreadyExists):
        await cm.make_dir("sub")
    with pytest.raises(NotebookNotFound):
        await cm.make_dir("nope/inner")
    with pytest.raises(NotebookNotFound):
        await cm.get("sub/missing.ipynb")
    with pytest.raises(NotebookNotFound):
        await cm.list_dir("nope")


async def test_id_for_path_of_files_placed_by_other_programs(
    cm: ContentsManager, root: Path
) -> None:
    (root / "dropped.ipynb").write_bytes(notebook_bytes())
    (root / "folder.ipynb").mkdir()
    (root / "data.json").write_text("{}")

    first = await cm.id_for_path("dropped.ipynb")

    assert first == await cm.id_for_path("dropped.ipynb")
    assert (await cm.get("dropped.ipynb")).id == first
    for path in ("missing.ipynb", "folder.ipynb", "data.json"):
        with pytest.raises(NotebookNotFound):
            await cm.id_for_path(path)


async def test_concurrent_lookups_agree_on_one_id(cm: ContentsManager, root: Path) -> None:
    (root / "shared.ipynb").write_bytes(notebook_bytes())

    ids = await asyncio.gather(*(cm.id_for_path("shared.ipynb") for _ in range(20)))

    assert len(set(ids)) == 1
    assert await cm.notebook_ids_under("") == [ids[0]]


async def test_unknown_or_vanished_id(cm: ContentsManager, root: Path) -> None:
    entry = await cm.create_notebook("gone.ipynb")
    assert entry.id is not None
    (root / "gone.ipynb").unlink()

    for notebook_id in (entry.id, "0" * 32):
        with pytest.raises(NotebookNotFound):
            await cm.locate(notebook_id)
        with pytest.raises(NotebookNotFound):
            await cm.path_for_id(notebook_id)
        with pytest.raises(NotebookNotFound):
            await cm.read_bytes(notebook_id)


# ---- upload -------------------------------------------------------------------------


async def test_upload_is_byte_identical(cm: ContentsManager, root: Path) -> None:
    # compact JSON, no final newline: not how nbformat would write it
    data = json.dumps(new_notebook(), separators=(",", ":")).encode()

    entry = await cm.upload_notebook("up.ipynb", data)

    assert (root / "up.ipynb").read_bytes() == data
    assert entry.id is not None and await cm.read_bytes(entry.id) == data
    assert entry.size == len(data)


async def test_upload_invalid_or_existing_writes_nothing(cm: ContentsManager, root: Path) -> None:
    original = notebook_bytes("original")
    await cm.upload_notebook("up.ipynb", original)
    before = snapshot(root)

    for bad in (b"not json", b'{"nbformat": 4}', b"\xff\xfe", b'{"nbformat": 3, "cells": []}'):
        with pytest.raises(InvalidNotebook):
            await cm.upload_notebook("bad.ipynb", bad)
        with pytest.raises(InvalidNotebook):
            await cm.upload_notebook("up.ipynb", bad, overwrite=True)
    with pytest.raises(AlreadyExists):
        await cm.upload_notebook("up.ipynb", notebook_bytes("other"))
    with pytest.raises(InvalidPath):
        await cm.upload_notebook("up.json", original)

    assert snapshot(root) == before


async def test_upload_overwrite_keeps_the_id(cm: ContentsManager, root: Path) -> None:
    first = await cm.upload_notebook("up.ipynb", notebook_bytes("v1"))
    new_data = notebook_bytes("v2")

    second = await cm.upload_notebook("up.ipynb", new_data, overwrite=True)

    assert second.id == first.id and second.id is not None
    assert await cm.read_bytes(second.id) == new_data == (root / "up.ipynb").read_bytes()


# ---- rename -------------------------------------------------------------------------


async def test_rename_notebook_keeps_its_id(cm: ContentsManager, root: Path) -> None:
    entry = await cm.create_notebook("old.ipynb")
    await cm.make_dir("sub")

    new_entry, moved = await cm.rename("old.ipynb", "sub/new.ipynb")

    assert new_entry.path == "sub/new.ipynb" and new_entry.id == entry.id
    assert entry.id is not None
    assert [(m.id, m.path, m.abs_path) for m in moved] == [
        (entry.id, "sub/new.ipynb", root / "sub" / "new.ipynb")
    ]
    assert await cm.path_for_id(entry.id) == "sub/new.ipynb"
    assert not (root / "old.ipynb").exists()
    assert [e.name for e in await cm.list_dir()] == ["sub"]
    with pytest.raises(NotebookNotFound):
        await cm.id_for_path("old.ipynb")


async def test_rename_folder_moves_every_notebook_id(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("proj")
    await cm.make_dir("proj/deep")
    await cm.make_dir("project2")
    a = await cm.create_notebook("proj/a.ipynb")
    b = await cm.create_notebook("proj/deep/b.ipynb")
    other = await cm.create_notebook("project2/c.ipynb")  # shares a prefix, must not move
    (root / "proj" / "notes.txt").write_text("kept")

    entry, moved = await cm.rename("proj", "renamed")

    assert (entry.path, entry.type) == ("renamed", "directory")
    assert sorted((m.id, m.path, m.abs_path) for m in moved) == sorted(
        [
            (a.id, "renamed/a.ipynb", root / "renamed" / "a.ipynb"),
            (b.id, "renamed/deep/b.ipynb", root / "renamed" / "deep" / "b.ipynb"),
        ]
    )
    assert (await cm.get("renamed/deep/b.ipynb")).id == b.id
    assert other.id is not None and await cm.path_for_id(other.id) == "project2/c.ipynb"
    assert (root / "renamed" / "notes.txt").read_text() == "kept"
    assert [e.name for e in await cm.list_dir()] == ["project2", "renamed"]


async def test_rename_refusals_change_nothing(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("dir")
    nb = await cm.create_notebook("dir/nb.ipynb")
    await cm.create_notebook("taken.ipynb")
    (root / "notes.txt").write_text("x")
    before = snapshot(root)

    with pytest.raises(AlreadyExists):
        await cm.rename("dir/nb.ipynb", "taken.ipynb")
    with pytest.raises(AlreadyExists):
        await cm.rename("notes.txt", "dir")
    with pytest.raises(NotebookNotFound):
        await cm.rename("missing.ipynb", "other.ipynb")
    with pytest.raises(NotebookNotFound):
        await cm.rename("dir/nb.ipynb", "nofolder/nb.ipynb")
    with pytest.raises(InvalidPath, match=r"\.ipynb"):
        await cm.rename("dir/nb.ipynb", "dir/nb.txt")
    with pytest.raises(InvalidPath, match="into itself"):
        await cm.rename("dir", "dir/inner")
    with pytest.raises(InvalidPath):
        await cm.rename("", "newroot")

    assert snapshot(root) == before
    assert nb.id is not None and await cm.path_for_id(nb.id) == "dir/nb.ipynb"


# ---- delete -------------------------------------------------------------------------


async def test_delete_notebook_returns_its_id(cm: ContentsManager, root: Path) -> None:
    entry = await cm.create_notebook("bye.ipynb")
    keep = await cm.create_notebook("keep.ipynb")

    assert await cm.delete("bye.ipynb") == [entry.id]

    assert [e.name for e in await cm.list_dir()] == ["keep.ipynb"]
    assert entry.id is not None
    with pytest.raises(NotebookNotFound):
        await cm.locate(entry.id)
    assert await cm.notebook_ids_under("") == [keep.id]
    with pytest.raises(NotebookNotFound):
        await cm.delete("bye.ipynb")


async def test_delete_folder_returns_all_notebook_ids(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("d")
    await cm.make_dir("d/e")
    ids = [
        await cm.id_for_path((await cm.create_notebook(p)).path)
        for p in ("d/1.ipynb", "d/e/2.ipynb")
    ]
    (root / "d" / ".ipynb_checkpoints").mkdir()
    (root / "d" / "data.csv").write_text("1,2")
    await cm.create_notebook("d2.ipynb")

    assert await cm.notebook_ids_under("d") == sorted(ids)
    assert await cm.delete("d") == sorted(ids)

    assert not (root / "d").exists()
    assert [e.name for e in await cm.list_dir()] == ["d2.ipynb"]
    with pytest.raises(InvalidPath):
        await cm.delete("")


async def test_delete_symlink_removes_the_link_only(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("real")
    target = await cm.create_notebook("real/nb.ipynb")
    (root / "alias").symlink_to(root / "real", target_is_directory=True)

    await cm.delete("alias")

    assert target.id is not None and await cm.path_for_id(target.id) == "real/nb.ipynb"
    assert [e.name for e in await cm.list_dir()] == ["real"]


# ---- moves made by other programs ----------------------------------------------------


async def test_notebook_moved_outside_the_server_keeps_its_id(
    cm: ContentsManager, root: Path
) -> None:
    entry = await cm.create_notebook("a.ipynb")
    (root / "sub").mkdir()
    os.rename(root / "a.ipynb", root / "sub" / "moved.ipynb")

    listed = await cm.list_dir("sub")

    assert [(e.name, e.id) for e in listed] == [("moved.ipynb", entry.id)]
    assert entry.id is not None and await cm.path_for_id(entry.id) == "sub/moved.ipynb"


async def test_move_after_an_atomic_save_keeps_the_id(cm: ContentsManager, root: Path) -> None:
    entry = await cm.create_notebook("a.ipynb")
    assert entry.id is not None
    atomic_write(root / "a.ipynb", notebook_bytes("saved"))  # new inode
    await cm.record_inode(entry.id)
    os.rename(root / "a.ipynb", root / "b.ipynb")

    assert await cm.id_for_path("b.ipynb") == entry.id


async def test_new_file_at_a_moved_notebooks_old_path_gets_a_new_id(
    cm: ContentsManager, root: Path
) -> None:
    entry = await cm.create_notebook("a.ipynb")
    os.rename(root / "a.ipynb", root / "b.ipynb")

    created = await cm.create_notebook("a.ipynb")

    assert created.id is not None and entry.id is not None and created.id != entry.id
    with pytest.raises(NotebookNotFound):  # until the moved file is seen again
        await cm.locate(entry.id)
    assert await cm.id_for_path("b.ipynb") == entry.id
    assert sorted(await cm.notebook_ids_under("")) == sorted([entry.id, created.id])


async def test_folder_moved_outside_the_server_keeps_ids(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("d")
    entry = await cm.create_notebook("d/nb.ipynb")
    os.rename(root / "d", root / "e")

    assert [(e.path, e.id) for e in await cm.list_dir("e")] == [("e/nb.ipynb", entry.id)]


async def test_rename_onto_a_path_freed_by_another_program(cm: ContentsManager, root: Path) -> None:
    await cm.make_dir("src")
    await cm.make_dir("t")
    moving = await cm.create_notebook("src/x.ipynb")
    await cm.create_notebook("t/x.ipynb")
    (root / "t" / "x.ipynb").unlink()
    (root / "t").rmdir()

    _, moved = await cm.rename("src", "t")

    assert [(m.id, m.path) for m in moved] == [(moving.id, "t/x.ipynb")]
    assert (await cm.get("t/x.ipynb")).id == moving.id


# ---- paths that must be refused ------------------------------------------------------

BAD_PATHS = [
    "../x.ipynb",
    "/etc/passwd",
    "a/../../x.ipynb",
    "a/../x.ipynb",
    "a\\b.ipynb",
    "a\x00b.ipynb",
    ".hidden.ipynb",
    "a/.ipynb_checkpoints/x.ipynb",
    "a//x.ipynb",
    "a/",
    "escape",  # symlink in the root to a folder outside it
    "escape/secret.ipynb",
    "escape/new.ipynb",
    "leak.ipynb",  # symlink in the root to a notebook outside it
]

Op = Callable[[ContentsManager, str], Awaitable[object]]

OPERATIONS: dict[str, Op] = {
    "resolve": lambda cm, p: cm.resolve(p),
    "get": lambda cm, p: cm.get(p),
    "list_dir": lambda cm, p: cm.list_dir(p),
    "id_for_path": lambda cm, p: cm.id_for_path(p),
    "notebook_ids_under": lambda cm, p: cm.notebook_ids_under(p),
    "make_dir": lambda cm, p: cm.make_dir(p),
    "create_notebook": lambda cm, p: cm.create_notebook(p),
    "upload_notebook": lambda cm, p: cm.upload_notebook(p, notebook_bytes(), overwrite=True),
    "rename_from": lambda cm, p: cm.rename(p, "a/renamed.ipynb"),
    "rename_to": lambda cm, p: cm.rename("a/nb.ipynb", p),
    "delete": lambda cm, p: cm.delete(p),
}


@pytest.mark.parametrize("op", list(OPERATIONS))
@pytest.mark.parametrize("path", BAD_PATHS)
async def test_bad_paths_are_refused_and_change_nothing(
    cm: ContentsManager, root: Path, outside: Path, tmp_path: Path, op: str, path: str
) -> None:
    await cm.make_dir("a")
    nb = await cm.create_notebook("a/nb.ipynb")
    before = snapshot(tmp_path)

    with pytest.raises(InvalidPath) as refused:
        await OPERATIONS[op](cm, path)

    assert str(refused.value)
    assert snapshot(tmp_path) == before
    assert nb.id is not None and await cm.path_for_id(nb.id) == "a/nb.ipynb"


async def test_symlink_errors_say_the_path_leaves_the_root(
    cm: ContentsManager, outside: Path
) -> None:
    with pytest.raises(InvalidPath, match="outside the root"):
        await cm.get("escape/secret.ipynb")


async def test_listing_hides_symlinks_leading_outside(
    cm: ContentsManager, root: Path, outside: Path
) -> None:
    await cm.make_dir("inside")
    (root / "inside" / "nb.ipynb").write_bytes(notebook_bytes())
    (root / "alias.ipynb").symlink_to(root / "inside" / "nb.ipynb")

    entries = await cm.list_dir()

    assert [(e.name, e.type) for e in entries] == [
        ("inside", "directory"),
        ("alias.ipynb", "notebook"),
    ]


def test_entry_is_frozen() -> None:
    entry = Entry("a", "a", "file", None, 1, 0.0)
    with pytest.raises(AttributeError):
        entry.name = "b"  # type: ignore[misc]
