"""lti uses courses; courses never imports lti, and lti's modules import each other without a circle."""

from __future__ import annotations

import grimp


def _graph() -> grimp.ImportGraph:
    return grimp.build_graph("lti", "courses", cache_dir=None)


def _cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), within ``package``."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(f"{package}."))
    edges = {m: sorted(set(graph.find_modules_directly_imported_by(m)) & set(modules)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for other in edges[module]:
            if other not in index:
                visit(other)
                low[module] = min(low[module], low[other])
            elif other in stack:
                low[module] = min(low[module], index[other])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in modules:
        if module not in index:
            visit(module)
    return found


def test_courses_never_imports_lti() -> None:
    graph = _graph()
    imports = graph.find_matching_direct_imports(import_expression="courses.** -> lti.**")
    assert imports == []
    assert not graph.chain_exists(importer="courses", imported="lti", as_packages=True)


def test_lti_has_no_import_cycle() -> None:
    assert _cycles(_graph(), "lti") == []


def test_courses_has_no_import_cycle() -> None:
    assert _cycles(_graph(), "courses") == []
