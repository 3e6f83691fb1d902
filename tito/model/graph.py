"""The module dependency graph, derived from the code itself.

Every edge comes from a static `tinytorch.core` import in a dev file, a test file or an example (see
`tito.model.scan`); nobody maintains a list by hand. A module may import only from
modules with a smaller number: `order_errors` reports anything else with its file and line.

A file that imports tinytorch in a way the scan cannot follow (importlib.import_module, `__import__`,
exec) may load any export, so whatever runs it depends on every export: safe (it never runs against a
stale export), at the price of rerunning after any module changes. `check` names the line, so the
author can write a static import instead and get exact edges back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tito.model.layout import SUPPORT_DIR, Module, discover, select_module
from tito.model.scan import DynamicImport, scan_core_imports, scan_dynamic_imports, scan_support_imports


@dataclass
class Graph:
    root: Path
    modules: list[Module]
    by_export: dict[str, Module]  # "layers" -> Module 04_layers
    # A Graph is a snapshot of the tree when it was loaded: what it learns about a file is kept, because
    # loading asks about the same test files many times (check, test and integrate tasks).
    _memo: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(cls, root: Path) -> Graph:
        """Discover the modules (each dev file read once) and index them by export name."""
        modules = discover(root)
        return cls(Path(root), modules, {m.export_name: m for m in modules})

    def module(self, key: str) -> Module:
        """The module named `key` ("04_layers", "04" or "layers"); LookupError names the known ones."""
        return select_module(self.modules, key)

    def direct_upstream(self, module: Module) -> list[Module]:
        """Modules whose exports this module's dev file imports (itself and unknown names excluded)."""
        found = []
        for imp in module.imports:
            other = self.by_export.get(imp.name)
            if other and other.key != module.key and other not in found:
                found.append(other)
        return found

    def upstream(self, module: Module) -> list[Module]:
        """Every module this one stands on, transitively, in curriculum order."""
        return self._closure([module], include_start=False)

    def modules_run_by(self, module: Module) -> list[Module]:
        """The modules whose exports running this module's dev file may load: those it stands on, or
        every module when it imports dynamically."""
        return list(self.modules) if module.dynamic_imports else self.upstream(module)

    def modules_reached_by(self, path: Path) -> list[Module]:
        """The modules a test or example file reaches: its imports, its helpers' imports, and everything
        they stand on (every module when one of these files imports dynamically)."""
        key = ("reached", Path(path))
        if key not in self._memo:
            files = [Path(path), *self.support_files_of(path)]
            if any(scan_dynamic_imports(f) for f in files):
                self._memo[key] = list(self.modules)
            else:
                start = [self.by_export[i.name] for f in files for i in scan_core_imports(f) if i.name in self.by_export]
                self._memo[key] = self._closure(start, include_start=True)
        return list(self._memo[key])

    def support_files_of(self, path: Path) -> list[Path]:
        """tests/support/*.py helpers that a test file imports: inputs of its task like the file itself."""
        key = ("support", Path(path))
        if key not in self._memo:
            self._memo[key] = scan_support_imports(path, self.root / SUPPORT_DIR)
        return list(self._memo[key])

    def dynamic_imports_of(self, path: Path) -> list[tuple[Path, DynamicImport]]:
        """(file, import) for every dynamic import in a test or example file and the helpers it imports."""
        return [(f, found) for f in [Path(path), *self.support_files_of(path)] for found in scan_dynamic_imports(f)]

    def exported_files_reached_by(self, path: Path) -> list[Path]:
        return [m.export_file for m in self.modules_reached_by(path)]

    def downstream(self, module: Module) -> list[Module]:
        """Every module that stands on this one, transitively."""
        return [m for m in self.modules if module in self.upstream(m)]

    def _closure(self, start: list[Module], include_start: bool) -> list[Module]:
        seen: set[str] = set()
        stack = list(start) if include_start else [u for s in start for u in self.direct_upstream(s)]
        while stack:
            module = stack.pop()
            if module.key in seen:
                continue
            seen.add(module.key)
            stack.extend(self.direct_upstream(module))
        return [m for m in self.modules if m.key in seen]

    # --- checks ---------------------------------------------------------------------------------------

    def order_errors(self, module: Module) -> list[str]:
        """`file:line: message` for imports of unknown, same- or higher-numbered modules."""
        errors = []
        rel = module.dev_file.relative_to(self.root)
        for imp in module.imports:
            other = self.by_export.get(imp.name)
            if other is None:
                known = ", ".join(sorted(self.by_export)) or "none"
                errors.append(f"{rel}:{imp.line}: imports tinytorch.core.{imp.name}, which no module exports "
                              f"(exported: {known})")
            elif other.key == module.key:
                errors.append(f"{rel}:{imp.line}: imports its own export tinytorch.core.{imp.name}; "
                              "use the names defined in this file instead")
            elif other.number >= module.number:
                errors.append(f"{rel}:{imp.line}: module {module.key} imports tinytorch.core.{imp.name} from "
                              f"module {other.key}; a module may import only from lower-numbered modules. "
                              "Move the shared code down, or renumber the modules.")
        cycle = self.cycle_through(module)
        if cycle:
            errors.append(f"{rel}:1: import cycle: {' -> '.join(m.key for m in cycle)}")
        return errors

    def cycle_through(self, module: Module) -> list[Module]:
        """A path module -> ... -> module along imports, or [] when there is none."""
        stack = [(module, [module])]
        visited: set[str] = set()
        while stack:
            current, path = stack.pop()
            for nxt in self.direct_upstream(current):
                if nxt.key == module.key:
                    return path + [module]
                if nxt.key not in visited:
                    visited.add(nxt.key)
                    stack.append((nxt, path + [nxt]))
        return []
