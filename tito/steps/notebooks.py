"""Student release notebooks: `modules/source/NN_name/name_dev.py` -> `modules/release/NN_name/name.ipynb`.

The release is the dev file as a Jupyter notebook with the solutions replaced by
`raise NotImplementedError(...)` stubs and the hidden tests removed. Everything else stays: prose,
`#| export` directives (students export with them too), visible tests and the nbgrader metadata that
graders rely on.

The bytes are deterministic (cell ids derived from grade ids, sorted JSON keys, no outputs), so an
edit that does not change the student's view leaves the notebook byte-identical and doit's early
cutoff holds. nbformat is imported inside the functions: loading the task graph must
stay cheap.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tito.model.devfile import DevFile, DevFileError
from tito.model.layout import RELEASE_DIR, discover, find_module
from tito.model.scan import sha256_bytes, sha256_file
from tito.steps.generated import Family, HandEdited, Kind, reports_disk_full, state, write_generated
from tito.steps.nbgrader import clear_solutions, remove_hidden_tests, validate

KERNELSPEC = {"display_name": "Python 3", "language": "python", "name": "python3"}
CELL_ID_RE = re.compile(r"^[a-zA-Z0-9_\-]{1,64}$")  # nbformat 4.5's rule for cell ids
HASH_KEY = "content_sha256"  # in metadata.tinytorch: how a hand edit of the notebook is noticed


class ReleaseError(Exception):
    """The dev file cannot be released; `messages` are `file:line: what` lines."""

    def __init__(self, messages: list[str]):
        super().__init__("\n".join(messages))
        self.messages = messages


def release_notebook(dev: DevFile) -> bytes:
    """The student notebook for a dev file, as the exact bytes to write.

    Raises ReleaseError (with `file:line` messages) when the dev file breaks an NBGrader rule: a
    notebook with unbalanced markers could leak a solution.
    """
    import nbformat

    problems = validate(dev)
    if problems:
        raise ReleaseError(problems)

    used_ids: set[str] = set()
    released = []
    for cell in dev.cells:
        meta = cell.nbgrader if isinstance(cell.nbgrader, dict) else None
        metadata = {"nbgrader": dict(meta)} if meta is not None else {}  # jupytext-only keys dropped
        cell_id = _cell_id(cell.index, meta, used_ids)
        if cell.kind == "code":
            released.append(nbformat.v4.new_code_cell(student_source(cell.source, meta, cell_id),
                                                      metadata=metadata, id=cell_id))
        elif cell.kind == "markdown":
            released.append(nbformat.v4.new_markdown_cell(cell.source, metadata=metadata, id=cell_id))
        else:
            released.append(nbformat.v4.new_raw_cell(cell.source, metadata=metadata, id=cell_id))

    shown = dev.path.as_posix()
    module_key = dev.module.key if dev.module else Path(dev.path).parent.name
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


def student_source(source: str, meta: dict | None, cell_id: str) -> str:
    """What a student sees of a code cell: solutions replaced by stubs, hidden tests removed."""
    if meta and meta.get("solution"):
        source = clear_solutions(source, meta.get("grade_id") or cell_id)
    return remove_hidden_tests(source)


def content_hash(notebook: dict) -> str:
    """SHA-256 of a notebook's content, its own recorded hash left out (JSON with sorted keys)."""
    copy = json.loads(json.dumps(notebook))
    copy.get("metadata", {}).get("tinytorch", {}).pop(HASH_KEY, None)
    return sha256_bytes(json.dumps(copy, sort_keys=True, separators=(",", ":")).encode("utf-8"))


def _notebook_hashes(path: Path) -> tuple[str | None, str]:
    data = Path(path).read_bytes()
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None, sha256_bytes(data)
    if not isinstance(notebook, dict):
        return None, sha256_bytes(data)
    recorded = notebook.get("metadata", {}).get("tinytorch", {}).get(HASH_KEY)
    return recorded, content_hash(notebook)


RELEASE = Kind("release notebook", "release", "tito release {key} --discard-edits", _notebook_hashes)


def notebook_state(path: Path) -> str:
    """'missing', 'current' (content matches its recorded hash) or 'hand-edited'."""
    return state(path, RELEASE)


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


@reports_disk_full
def release_module(root: str, key: str):
    """doit action for `release:<key>`: write the student notebook if its content changed."""
    from doit.exceptions import TaskFailed

    root_path = Path(root)
    module = find_module(root_path, key)
    source_sha = sha256_file(module.dev_file)  # what we read, not what is there when we finish
    target = module.release_notebook
    rel_target = target.relative_to(root_path)
    untouched = f"{rel_target} was left untouched. Fix the dev file, then run `doit release:{key}`."
    try:
        data = release_notebook(DevFile.of(module))
    except DevFileError as error:
        return TaskFailed(f"{error}\n{untouched}")
    except ReleaseError as error:
        return TaskFailed("\n".join(error.messages) + f"\n{len(error.messages)} problem(s); {untouched}")
    try:
        changed = write_generated(root_path, target, data, RELEASE, key, module.dev_file)
    except HandEdited as error:
        return TaskFailed(str(error))
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


def release_family() -> Family:
    """Release notebooks; only those that record our content hash are ours."""
    return Family(RELEASE, f"{RELEASE_DIR.as_posix()}/*/*.ipynb",
                  lambda root: {module.release_notebook for module in discover(root)})
