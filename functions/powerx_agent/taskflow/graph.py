"""Pictures of a compiled state machine: Graphviz DOT text and a self-contained SVG.

Both views share one graph: every state is a vertex (names are unique across the whole machine,
branches included), plus ``start`` and ``end``. A ``Parallel`` state is drawn as the fork: edges go
to each branch's first state, and each branch's last state leads to what follows the Parallel.
Branches are clusters. ``Catch`` edges are dashed, ``Choice`` edges are labelled.

The SVG is laid out by grandalf's Sugiyama layout; this module only draws grandalf's coordinates
(cluster frames are the bounding boxes of their states). ``status`` colours states by node id:
SUCCEEDED green, FAILED red, RUNNING blue, SKIPPED grey, ESCALATED orange, PENDING white.

Pure domain: no boto3, no I/O.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

if TYPE_CHECKING:
    from powerx_agent.taskflow.asl import CompiledFlow

__all__ = ["STATUS_COLOURS", "StateGraph", "state_graph", "to_dot", "to_svg"]

STATUS_COLOURS = {
    "SUCCEEDED": "#b7e4c7",
    "FAILED": "#f4a6a6",
    "RUNNING": "#a9c8f5",
    "SKIPPED": "#d9d9d9",
    "ESCALATED": "#f9c784",
    "STOPPED": "#c9b3e6",
    "PENDING": "#ffffff",
}
_DEFAULT_FILL = "#ffffff"
START, END = "start", "end"


@dataclass
class StateGraph:
    vertices: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {label, type, cluster}
    edges: list[tuple[str, str, str, str]] = field(default_factory=list)  # (src, dst, style, label)
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> {label, parent}
    name: str = "state machine"


def _definition(compiled: CompiledFlow | dict[str, Any]) -> tuple[dict[str, Any], str]:
    if isinstance(compiled, dict):
        return compiled, str(compiled.get("Comment", "state machine"))
    return compiled.definition, compiled.state_machine_name


def state_graph(compiled: CompiledFlow | dict[str, Any]) -> StateGraph:
    definition, name = _definition(compiled)
    graph = StateGraph(name=name)
    graph.vertices[START] = {"label": "start", "type": "Start", "cluster": None}
    graph.vertices[END] = {"label": "end", "type": "End", "cluster": None}
    graph.edges.append((START, definition["StartAt"], "next", ""))
    _walk(definition["States"], END, None, graph)
    return graph


def _walk(states: dict[str, Any], after: str, cluster: str | None, graph: StateGraph) -> None:
    for name, state in states.items():
        kind = state.get("Type", "?")
        graph.vertices[name] = {"label": name, "type": kind, "cluster": cluster}
        follow = state.get("Next", after if state.get("End") or kind in ("Succeed",) else None)
        if kind == "Choice":
            for rule in state.get("Choices", ()):
                var = str(rule.get("Variable", "")).rsplit(".", 1)[-1]
                cond = next((f"{var} = {json.dumps(v)}" if var else f"{k} = {json.dumps(v)}"
                             for k, v in rule.items() if k not in ("Variable", "Next")), "")
                graph.edges.append((name, rule["Next"], "choice", cond))
            if "Default" in state:
                graph.edges.append((name, state["Default"], "choice", "default"))
        elif kind == "Parallel":
            for i, branch in enumerate(state.get("Branches", ())):
                cid = f"{name}#{i}"
                graph.clusters[cid] = {"label": f"branch {i + 1}", "parent": cluster, "parallel": name}
                graph.edges.append((name, branch["StartAt"], "next", ""))
                _walk(branch["States"], follow or after, cid, graph)
            follow = None  # the branches lead on
        if follow is not None and kind != "Fail":
            graph.edges.append((name, follow, "next", ""))
        for catch in state.get("Catch", ()):
            graph.edges.append((name, catch["Next"], "catch", "/".join(catch.get("ErrorEquals", ()))))


def _fill(vertex: str, status: dict[str, str] | None) -> str:
    if not status:
        return _DEFAULT_FILL
    value = status.get(vertex)
    if value is None and "." in vertex:
        value = status.get(vertex.rsplit(".", 1)[0])
    return STATUS_COLOURS.get(str(value).upper(), _DEFAULT_FILL) if value else _DEFAULT_FILL


def _shape(kind: str) -> str:
    return {"Choice": "diamond", "Parallel": "box3d", "Fail": "octagon", "Start": "circle",
            "End": "doublecircle"}.get(kind, "box")


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(compiled: CompiledFlow | dict[str, Any], status: dict[str, str] | None = None) -> str:
    """Graphviz DOT of the state machine (Parallel branches as clusters)."""
    graph = state_graph(compiled)
    lines = [f"digraph {_q(graph.name)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
             '  edge [fontname="Helvetica", fontsize=9];']
    children: dict[str | None, list[str]] = {}
    for cid, info in graph.clusters.items():
        children.setdefault(info["parent"], []).append(cid)
    members: dict[str | None, list[str]] = {}
    for vid, info in graph.vertices.items():
        members.setdefault(info["cluster"], []).append(vid)

    def vertex_line(vid: str, indent: str) -> str:
        info = graph.vertices[vid]
        return (f"{indent}{_q(vid)} [label={_q(info['label'])}, shape={_shape(info['type'])}, "
                f"fillcolor={_q(_fill(vid, status))}];")

    def emit(cluster: str | None, indent: str) -> None:
        for vid in members.get(cluster, ()):
            lines.append(vertex_line(vid, indent))
        for index, cid in enumerate(children.get(cluster, ())):
            info = graph.clusters[cid]
            slug = "".join(ch if ch.isalnum() else "_" for ch in cid)
            lines.append(f"{indent}subgraph cluster_{slug}_{index} {{")
            lines.append(f"{indent}  label={_q(info['parallel'] + ' / ' + info['label'])}; style=dashed;")
            emit(cid, indent + "  ")
            lines.append(f"{indent}}}")

    emit(None, "  ")
    for src, dst, style, label in graph.edges:
        attrs = []
        if style == "catch":
            attrs.append('style=dashed, color="#c0392b"')
        if label:
            attrs.append(f"label={_q(label)}")
        suffix = f" [{', '.join(attrs)}]" if attrs else ""
        lines.append(f"  {_q(src)} -> {_q(dst)}{suffix};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class _VertexView:
    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


class _EdgeView:
    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, pts: list[tuple[float, float]]) -> None:
        self.points = [(float(x), float(y)) for x, y in pts]


def to_svg(compiled: CompiledFlow | dict[str, Any], status: dict[str, str] | None = None) -> str:
    """A self-contained SVG of the state machine, laid out with grandalf (Sugiyama)."""
    from grandalf.graphs import Edge, Graph, Vertex
    from grandalf.layouts import SugiyamaLayout

    graph = state_graph(compiled)
    gv: dict[str, Vertex] = {}
    for vid, info in graph.vertices.items():
        v = Vertex(vid)
        width = max(60.0, 7.0 * len(info["label"]) + 24.0)
        v.view = _VertexView(width, 28.0)
        gv[vid] = v
    ge: list[tuple[Edge, str, str]] = []
    catches: list[tuple[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for src, dst, style, label in graph.edges:
        if (src, dst) in seen or src == dst:
            continue
        seen.add((src, dst))
        if style == "catch":  # drawn straight, outside the layout: the flow keeps its shape
            catches.append((src, dst))
            continue
        e = Edge(gv[src], gv[dst])
        e.view = _EdgeView()
        ge.append((e, style, label))
    g = Graph(list(gv.values()), [e for e, _, _ in ge])
    offset = 0.0
    main_height = 0.0
    for component in sorted(g.C, key=lambda c: not any(v.data == START for v in c.sV)):
        layout = SugiyamaLayout(component)
        roots = [v for v in component.sV if v.data == START] or None
        layout.init_all(roots=roots)
        layout.draw()
        xs = [v.view.xy[0] - v.view.w / 2 for v in component.sV]
        ys = [v.view.xy[1] for v in component.sV]
        shift = offset - min(xs) + (40.0 if offset else 0.0)
        # the failure path (Escalate ...) sits beside the flow, level with its lower half
        lift = 0.0 if not main_height else max(0.0, main_height * 0.55 - min(ys))
        for v in component.sV:
            v.view.xy = (v.view.xy[0] + shift, v.view.xy[1] + lift)
        for e in component.sE:
            e.view.points = [(x + shift, y + lift) for x, y in e.view.points]
        offset = max(v.view.xy[0] + v.view.w / 2 for v in component.sV) + 40.0
        if not main_height:
            main_height = max(ys) - min(ys)

    # cluster frames: bounding boxes of member states (nested frames get more padding)
    def cluster_members(cid: str) -> list[str]:
        out = [vid for vid, info in graph.vertices.items() if info["cluster"] == cid]
        for child, info in graph.clusters.items():
            if info["parent"] == cid:
                out += cluster_members(child)
        return out

    def depth(cid: str | None) -> int:
        d = 0
        while cid is not None:
            cid = graph.clusters[cid]["parent"]
            d += 1
        return d

    max_depth = max((depth(c) for c in graph.clusters), default=0)
    frames = []
    for cid, info in graph.clusters.items():
        vids = cluster_members(cid)
        if not vids:
            continue
        pad = 10.0 + 8.0 * (max_depth - depth(cid))
        x0 = min(gv[v].view.xy[0] - gv[v].view.w / 2 for v in vids) - pad
        x1 = max(gv[v].view.xy[0] + gv[v].view.w / 2 for v in vids) + pad
        y0 = min(gv[v].view.xy[1] - gv[v].view.h / 2 for v in vids) - pad - 12.0
        y1 = max(gv[v].view.xy[1] + gv[v].view.h / 2 for v in vids) + pad
        frames.append((depth(cid), x0, y0, x1, y1, info["label"]))

    xs = [gv[v].view.xy[0] - gv[v].view.w / 2 for v in gv] + [f[1] for f in frames]
    ys = [gv[v].view.xy[1] - gv[v].view.h / 2 for v in gv] + [f[2] for f in frames]
    xe = [gv[v].view.xy[0] + gv[v].view.w / 2 for v in gv] + [f[3] for f in frames]
    ye = [gv[v].view.xy[1] + gv[v].view.h / 2 for v in gv] + [f[4] for f in frames]
    for e, _, _ in ge:
        for x, y in e.view.points:
            xs.append(x)
            xe.append(x)
            ys.append(y)
            ye.append(y)
    margin = 20.0
    min_x, min_y = min(xs) - margin, min(ys) - margin
    width, height = max(xe) - min_x + margin, max(ye) - min_y + margin

    def p(x: float, y: float) -> str:
        return f"{x - min_x:.1f},{y - min_y:.1f}"

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
           f"<title>{escape(graph.name)}</title>",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#555"/>'
           "</marker></defs>"]
    for _, x0, y0, x1, y1, label in sorted(frames):
        out.append(f'<g class="cluster"><rect x="{x0 - min_x:.1f}" y="{y0 - min_y:.1f}" '
                   f'width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="6" fill="none" stroke="#999" '
                   f'stroke-dasharray="4 3"/><text x="{x0 - min_x + 6:.1f}" y="{y0 - min_y + 12:.1f}" '
                   f'fill="#666" font-size="9">{escape(label)}</text></g>')
    for src, dst in catches:
        a, b = gv[src].view, gv[dst].view
        start = _clip(a.xy, b.xy, a.w, a.h)
        end = _clip(b.xy, a.xy, b.w, b.h)
        out.append(f'<polyline class="edge catch" points="{p(*start)} {p(*end)}" fill="none" stroke="#c0392b" '
                   f'stroke-opacity="0.55" stroke-dasharray="5 3" marker-end="url(#arrow)"/>')
    for e, style, label in ge:
        a, b = gv[e.v[0].data].view, gv[e.v[1].data].view
        pts = list(e.view.points) or [a.xy, b.xy]
        if len(pts) < 2:
            pts = [a.xy, b.xy]
        pts[0] = _clip(a.xy, pts[1], a.w, a.h)
        pts[-1] = _clip(b.xy, pts[-2], b.w, b.h)
        out.append(f'<polyline class="edge {style}" points="{" ".join(p(x, y) for x, y in pts)}" fill="none" '
                   f'stroke="#555" marker-end="url(#arrow)"/>')
        if label and style == "choice":
            (ax, ay), (bx, by) = pts[-2], pts[-1]
            lx, ly = ax + (bx - ax) * 0.6, ay + (by - ay) * 0.6
            anchor = "end" if bx < ax else "start"
            dx = -4 if bx < ax else 4
            out.append(f'<text x="{lx - min_x + dx:.1f}" y="{ly - min_y:.1f}" text-anchor="{anchor}" '
                       f'fill="#555" font-size="9">{escape(label)}</text>')
    for vid, v in gv.items():
        info = graph.vertices[vid]
        x, y = v.view.xy
        fill = _fill(vid, status)
        left, top = x - v.view.w / 2 - min_x, y - v.view.h / 2 - min_y
        stroke = "#c0392b" if info["type"] == "Fail" else "#333"
        rx = 14 if info["type"] in ("Start", "End") else (2 if info["type"] == "Choice" else 6)
        state_status = (status or {}).get(vid) or (status or {}).get(vid.rsplit(".", 1)[0], "")
        out.append(f'<g class="state {info["type"].lower()}" data-state={_attr(vid)} '
                   f'data-status={_attr(str(state_status))}>'
                   f'<rect x="{left:.1f}" y="{top:.1f}" width="{v.view.w:.1f}" height="{v.view.h:.1f}" '
                   f'rx="{rx}" fill="{fill}" stroke="{stroke}"/>'
                   f'<text x="{x - min_x:.1f}" y="{y - min_y + 4:.1f}" text-anchor="middle">'
                   f"{escape(info['label'])}</text></g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _clip(centre: tuple[float, float], toward: tuple[float, float], w: float, h: float) -> tuple[float, float]:
    """Where the segment from a box's centre toward a point leaves the box (w × h)."""
    (cx, cy), (tx, ty) = centre, toward
    dx, dy = tx - cx, ty - cy
    if dx == 0 and dy == 0:
        return centre
    scale = min(w / 2 / abs(dx) if dx else float("inf"), h / 2 / abs(dy) if dy else float("inf"))
    scale = min(scale, 1.0)
    return cx + dx * scale, cy + dy * scale


def _attr(value: str) -> str:
    return '"' + escape(value, {'"': "&quot;"}) + '"'
