"""The container graph: every provider of a container, the adapter each port really serves (and
the effective values it is built from), who depends on whom, which providers a test has
overridden, and which ViewSets, consumers and tasks resolve each provider — built without calling
a single provider.

`build_graph(container)` returns a `ContainerGraph`; `render_text`, `render_mermaid` and
`render_dot` draw it. `core container graph` prints it. The modules: `model` (what a graph is),
`table` (the declared adapter table), `walk` (reading a container), `describe` (one provider),
`ports` (the adapters in use), `users` (who resolves what), `text`, `mermaid` and `dot` (the
renderers).
"""

from core.containers.graph.dot import render_dot
from core.containers.graph.mermaid import render_mermaid
from core.containers.graph.model import (
    ContainerGraph,
    GraphEdge,
    GraphNode,
    PortUse,
    ProviderUser,
    SelectorState,
)
from core.containers.graph.text import render_text
from core.containers.graph.walk import build_graph

__all__ = (
    "ContainerGraph",
    "GraphEdge",
    "GraphNode",
    "PortUse",
    "ProviderUser",
    "SelectorState",
    "build_graph",
    "render_dot",
    "render_mermaid",
    "render_text",
)
