"""Student release notebooks: `modules/source/NN_name/name_dev.py` -> `modules/release/NN_name/name.ipynb`.

The release is the dev file as a Jupyter notebook with the solutions replaced by
`raise NotImplementedError(...)` stubs and the hidden tests removed. Everything else stays: prose,
`#| export` directives (students export with them too), visible tests and the nbgrader metadata that
graders rely on.

The bytes are deterministic (cell ids derived from grade ids, sorted JSON keys, no outputs), so an
edit that does not change the student's view leaves the notebook byte-identical and doit's early
cutoff holds. jupytext and nbformat are imported inside the functions: loading the task graph must
stay cheap.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from tito.files import DISCARD_ENV, DISCARDED_DIR, move_aside, write_if_changed
from tito.modules import RELEASE_DIR, SOURCE_DIR, discover, find_module, read_cells, sha256_bytes, sha256_file
from tito.nbgrader import clear_solutions, remove_hidden_tests, validate

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
CELL_ID_RE = re.compile(r"^[a-zA-Z0-9_\-]{1,64}$")  # nbformat 4.5's rule for cell ids
HASH_KEY = "content_sha256"  # in metadata.tinytorch: how a hand edit of the notebook is noticed


class ReleaseError(Exception):
    """The dev file cannot be released; `messages` are `file:line: what` lines."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def release_notebook(dev_file: Path) -> bytes:
    """The student notebook for a dev file, as the exact bytes to write.

    Raises ReleaseError (with `file:line` messages) when the dev file breaks an NBGrader rule: a
    notebook with unbalanced markers could leak a solution.
    """
    import jupytext
    import nbformat

    dev_file = Path(dev_file)
    shown = _display_path(dev_file)
    cells = read_cells(dev_file)
    problems = validate(Path(shown), cells)
    if problems:
        raise ReleaseError(problems)

    text = dev_file.read_text(encoding="utf-8")
    notebook = jupytext.reads(text, fmt="py:percent")
    if len(notebook.cells) != len(cells):  # both come from the same text; a mismatch is a bug here
        raise ReleaseError([f"{shown}:1: jupytext read {len(notebook.cells)} cells but tito read {len(cells)}"])

    used_ids: set[str] = set()
    released = []
    for cell in cells:
        meta = cell.nbgrader if isinstance(cell.nbgrader, dict) else None
        metadata = {"nbgrader": dict(meta)} if meta is not None else {}  # jupytext-only keys dropped
        cell_id = _cell_id(cell.index, meta, used_ids)
        if cell.kind == "code":
            source = cell.source
            if meta and meta.get("solution"):
                source = clear_solutions(source, meta.get("grade_id") or cell_id)
            source = remove_hidden_tests(source)
            released.append(nbformat.v4.new_code_cell(source, metadata=metadata, id=cell_id))
        elif cell.kind == "markdown":
            released.append(nbformat.v4.new_markdown_cell(cell.source, metadata=metadata, id=cell_id))
        else:
            released.append(nbformat.v4.new_raw_cell(cell.source, metadata=metadata, id=cell_id))

    module_key = dev_file.parent.name
    result = nbformat.v4.new_notebook(cells=released, metadata={
        "kernelspec": dict(KERNELSPEC),
        "language_info": {"name": "python"},
        "tinytorch": {"module": module_key, "source": shown},
    })
    result.nbformat, result.nbformat_minor = 4, 5
    result.metadata["tinytorch"][HASH_KEY] = content_hash(json.loads(nbformat.writes(result, version=4)))
    nbformat.validate(result)
    data = nbformat.writes(result, version=4)
    return (data if data.endswith("\n") else data + "\n").encode("utf-8")


def content_hash(notebook: dict) -> str:
    """SHA-256 of a notebook's content, its own recorded hash left out (JSON with sorted keys)."""
    copy = json.loads(json.dumps(notebook))
    copy.get("metadata", {}).get("tinytorch", {}).pop(HASH_KEY, None)
    return sha256_bytes(json.dumps(copy, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def notebook_state(path: Path) -> str:
    """'missing', 'current' (content matches its recorded hash) or 'hand-edited'."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "missing"
    except (UnicodeDecodeError, json.JSONDecodeError):
        return "hand-edited"
    recorded = notebook.get("metadata", {}).get("tinytorch", {}).get(HASH_KEY) if isinstance(notebook, dict) else None
    return "current" if recorded and recorded == content_hash(notebook) else "hand-edited"


def _display_path(dev_file: Path) -> str:
    """`modules/source/NN_name/name_dev.py` when the file sits in a project tree, else the path as given."""
    parts = dev_file.parts
    anchor = SOURCE_DIR.parts
    for i in range(len(parts) - len(anchor), -1, -1):
        if parts[i:i + len(anchor)] == anchor:
            return Path(*parts[i:]).as_posix()
    return dev_file.as_posix()


def _cell_id(index: int, meta: dict | None, used: set[str]) -> str:
    """A stable cell id: the grade_id when it is a valid, unused id, else `cell-<index>`.

    Grade ids survive edits elsewhere in the file, so adding a paragraph does not renumber every cell
    after it; nbformat would otherwise assign random ids, which change on every build.
    """
    grade_id = meta.get("grade_id") if meta else None
    candidates = [grade_id] if isinstance(grade_id, str) else []
    candidates += [f"cell-{index}", f"cell-{index}-{len(used)}"]
    for candidate in candidates:
        if candidate and CELL_ID_RE.match(candidate) and candidate not in used:
            used.add(candidate)
            return candidate
    raise AssertionError("unreachable: the last candidate is always new")


# --- the doit action and its up-to-date check -----------------------------------------------------


def release_module(root: str, key: str):
    """doit action for `release:<key>`: write the student notebook if its content changed."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    module = find_module(root_path, key)
    source_sha = sha256_file(module.dev_file)  # what we read, not what is there when we finish
    target = module.release_notebook
    rel_target = target.relative_to(root_path)
    try:
        data = release_notebook(module.dev_file)
    except ReleaseError as error:
        return TaskFailed("\n".join(error.messages) + f"\n{len(error.messages)} problem(s); {rel_target} was left "
                          f"untouched. Fix the dev file, then run `doit release:{key}` (or `doit check:{key}`).")
    if notebook_state(target) == "hand-edited":
        if not os.environ.get(DISCARD_ENV):
            return TaskFailed(
                f"{rel_target} was edited by hand: its content no longer matches the hash recorded when it was "
                "generated, and the build never overwrites a hand edit silently.\n"
                f"To keep the edit: make it in {module.dev_file.relative_to(root_path)} (the release is generated "
                f"from it), or copy the notebook elsewhere (students work on copies).\n"
                f"To discard the edit: `tito release {key} --discard-edits` (or `{DISCARD_ENV}=1 doit release:{key}`); "
                f"a copy is kept in {DISCARDED_DIR}/.")
        backup = move_aside(root_path, target)
        print(f"Discarded the hand edit of {rel_target}; a copy is in {backup}")
    changed = write_if_changed(target, data)
    print(f"{'wrote' if changed else 'unchanged'}: {rel_target}")
    return {"source_sha256": source_sha, "notebook_sha256": sha256_file(target)}


def release_is_current(task, values, dev_file: str, notebook: str) -> bool:
    """doit `uptodate` for `release:<key>`: the notebook exists, is untouched, and came from this source.

    doit only checks that a target exists; this also notices a release notebook edited by hand (the
    action then stops and explains, as the export does) and a dev file edited while the release was
    being built.
    """
    return (values.get("source_sha256") == sha256_file(Path(dev_file))
            and values.get("notebook_sha256") == sha256_file(Path(notebook)))


# --- orphans ------------------------------------------------------------------------------------------


def orphan_release_notebooks(root: str) -> list[Path]:
    """Release notebooks whose module no longer exists (or was renamed); only notebooks we generated."""
    root_path = Path(root)
    expected = {module.release_notebook for module in discover(root_path)}
    orphans = []
    for path in sorted((root_path / RELEASE_DIR).glob("*/*.ipynb")):
        if path not in expected and b'"tinytorch": {' in path.read_bytes():  # our metadata marks it as ours
            orphans.append(path)
    return orphans


def no_orphan_release_notebooks(root: str) -> bool:
    """doit `uptodate` for the orphan step: a no-op build stays a no-op."""
    return not orphan_release_notebooks(root)


def remove_orphan_release_notebooks(root: str) -> None:
    """doit action: delete orphaned release notebooks, and their folders once empty."""
    for path in orphan_release_notebooks(root):
        path.unlink()
        print(f"removed {path.relative_to(root)}: its module no longer exists")
        if not any(path.parent.iterdir()):
            path.parent.rmdir()
