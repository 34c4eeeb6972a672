"""``format=text``: the tree as a compact indented outline for language models.

One line per node: role, quoted name, id, position and the states that matter for acting
(focused, checked, selected, ...). States nearly every node has (enabled, visible, ...) are
left out, and unnamed structural containers (panel, filler, ... without actions) are skipped
with their children pulled up a level: they cost tokens and say nothing.
"""

from __future__ import annotations

from agent.a11y.node import Node, TreeResult

QUIET_STATES = frozenset(
    {
        "enabled",
        "sensitive",
        "visible",
        "showing",
        "focusable",
        "selectable",
        "opaque",
        "single-line",
        "horizontal",
        "vertical",
        "resizable",
        "has-tooltip",
        "manages-descendants",
        "transient",
        "multiselectable",
        "selectable-text",
        "supports-autocompletion",
        "checkable",
    }
)
STRUCTURAL_ROLES = frozenset(
    {"panel", "filler", "scroll pane", "viewport", "layered pane", "section", "grouping"}
)
NAME_LIMIT = 120


def render(result: TreeResult) -> str:
    lines: list[str] = []
    _render(result.root, 0, lines)
    footer = f"# {result.node_count} nodes, {result.elapsed_ms:g} ms"
    if result.truncated:
        footer += ", TRUNCATED (raise max_depth/max_nodes/timeout, or narrow with app/window)"
    lines.append(footer)
    return "\n".join(lines) + "\n"


def _render(node: Node, level: int, lines: list[str]) -> None:
    role = node.role_name
    skip = level > 0 and role in STRUCTURAL_ROLES and not node.name and not node.actions and not node.text
    if not skip:
        lines.append("  " * level + _line(node))
        level += 1
    for child in node.children:
        _render(child, level, lines)


def _line(node: Node) -> str:
    parts = [node.role_name]
    if node.name:
        name = node.name if len(node.name) <= NAME_LIMIT else node.name[: NAME_LIMIT - 1] + "…"
        parts.append(_quote(name))
    parts.append(f"[{node.id}]")
    if node.extents is not None:
        box = node.extents
        parts.append(f"@{box.x},{box.y} {box.width}x{box.height}")
    states = [state for state in node.states if state not in QUIET_STATES]
    if states:
        parts.append("{" + ",".join(states) + "}")
    if node.value is not None:
        parts.append(f"value={node.value:g}")
    if node.text:
        text = node.text if len(node.text) <= NAME_LIMIT else node.text[: NAME_LIMIT - 1] + "…"
        parts.append("text=" + _quote(text))
    if node.actions:
        parts.append("actions=" + ",".join(a for a in node.actions if a))
    if node.pid is not None:
        parts.append(f"pid={node.pid}")
    return " ".join(parts)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
