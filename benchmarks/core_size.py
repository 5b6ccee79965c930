"""How small the library is: the numbers of issue 22, measured on the source, printed in one run.

- code lines per module: lines that hold code, with blank lines, comments and docstrings not counted;
- `raise` statements per module;
- the modules that declare `__all__`;
- the gradcam closure: the library's functions and classes whose names appear in `gradcam`'s body,
  and theirs, and so on; how many there are and how many lines they take (their whole source,
  docstrings included, as a reader reads them).

The library proper is minicam/ without minicam/apps/ and minicam/suite/ (the command-line apps and
the notebooks' own helpers). Goals: <= 1,900 code lines, <= 110 raises, closure <= 12 and <= 160 lines.
Run: python benchmarks/core_size.py [path/to/minicam] [--all]   (--all also lists apps/ and suite/)
"""
from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from pathlib import Path

APART = ("apps", "suite", "__main__")  # the apps (and their launcher) and the suite: outside the numbers


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers covered by docstrings (module, class and function)."""
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                lines.update(range(body[0].lineno, body[0].end_lineno + 1))
    return lines


def code_lines(source: str) -> set[int]:
    """Line numbers that hold a token other than a comment, a newline or a docstring."""
    tree = ast.parse(source)
    skip = docstring_lines(tree)
    lines = set()
    ignored = (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT,
               tokenize.ENDMARKER)
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in ignored:
            continue
        for line in range(token.start[0], token.end[0] + 1):
            if line not in skip:
                lines.add(line)
    return lines


def raises(tree: ast.AST) -> int:
    return sum(isinstance(node, ast.Raise) for node in ast.walk(tree))


def has_all(tree: ast.Module) -> bool:
    return any(isinstance(node, (ast.Assign, ast.AnnAssign)) and any(
        isinstance(t, ast.Name) and t.id == "__all__" for t in (node.targets if isinstance(node, ast.Assign)
                                                                else [node.target]))
        for node in tree.body)


def definitions(modules: dict[str, ast.Module]) -> dict[tuple[str, str], ast.AST]:
    """(module, name) -> the top-level function or class of that name."""
    return {(mod, node.name): node for mod, tree in modules.items() for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def imported(tree: ast.Module, package: str) -> dict[str, tuple[str, str]]:
    """name -> (module, name) for `from .x import name` (and `from . import x` as a module alias)."""
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                if node.module:
                    names[alias.asname or alias.name] = (node.module, alias.name)
                else:
                    names[alias.asname or alias.name] = (alias.name, "")
    return names


def closure(root: tuple[str, str], modules: dict[str, ast.Module]) -> list[tuple[str, str]]:
    """The definitions a reader following `root` by name reads: the names in its body that are the
    library's functions and classes (its own module's, or imported from another), and so on."""
    defs = definitions(modules)
    imports = {mod: imported(tree, "minicam") for mod, tree in modules.items()}
    seen, todo = [], [root]
    while todo:
        key = todo.pop(0)
        if key in seen or key not in defs:
            continue
        seen.append(key)
        mod = key[0]
        for node in ast.walk(defs[key]):
            refs = []
            if isinstance(node, ast.Name):
                refs.append((mod, node.id))
                if node.id in imports[mod]:
                    refs.append(imports[mod][node.id])
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                target = imports[mod].get(node.value.id)
                if target and target[1] == "":  # `from . import hooks` then hooks.capture
                    refs.append((target[0], node.attr))
            for ref in refs:
                if ref in defs and ref not in seen:
                    todo.append(ref)
    return seen


def measure(package: Path, show_all: bool) -> int:
    sources = {}
    for path in sorted(package.rglob("*.py")):
        rel = path.relative_to(package)
        sources[".".join(rel.with_suffix("").parts)] = path.read_text()
    trees = {mod: ast.parse(src) for mod, src in sources.items()}
    core = {mod: tree for mod, tree in trees.items() if mod.split(".")[0] not in APART}

    print(f"{'module':<28} {'code':>6} {'raise':>6}  __all__")
    total_lines = total_raises = 0
    missing = []
    for mod in sorted(trees):
        part = mod.split(".")[0]
        inside = part not in APART
        if not inside and not show_all:
            continue
        n_lines, n_raises, declared = len(code_lines(sources[mod])), raises(trees[mod]), has_all(trees[mod])
        if inside:
            total_lines += n_lines
            total_raises += n_raises
            if not declared and not mod.endswith("__main__"):
                missing.append(mod)
        print(f"{('  ' if not inside else '') + mod:<28} {n_lines:>6} {n_raises:>6}  {'yes' if declared else 'no'}")
    print(f"{'library proper':<28} {total_lines:>6} {total_raises:>6}  (goal <= 1900 lines, <= 110 raises)")
    print(f"modules of the library without __all__: {', '.join(missing) or 'none'}")

    reader = closure(("gradients", "gradcam"), core)
    defs = definitions(core)
    lines = sum(defs[key].end_lineno - (defs[key].decorator_list[0].lineno if defs[key].decorator_list
                                        else defs[key].lineno) + 1 for key in reader)
    print(f"gradcam closure: {len(reader)} functions and classes, {lines} lines (goal <= 12 and <= 160)")
    for mod, name in reader:
        node = defs[(mod, name)]
        print(f"    {mod}.{name} ({node.end_lineno - node.lineno + 1} lines)")
    ok = total_lines <= 1900 and total_raises <= 110 and len(reader) <= 12 and lines <= 160 and not missing
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", nargs="?", default=str(Path(__file__).resolve().parent.parent / "minicam"))
    parser.add_argument("--all", action="store_true", help="also list minicam/apps and minicam/suite")
    args = parser.parse_args(argv)
    package = Path(args.package)
    if not (package / "__init__.py").is_file():
        print(f"core_size: {package} is not a package directory (no __init__.py)", file=sys.stderr)
        return 2
    measure(package, args.all)
    return 0


if __name__ == "__main__":
    sys.exit(main())
