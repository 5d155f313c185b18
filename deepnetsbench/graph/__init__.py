"""Computational graphs of networks (traced from torch, or derived from a spec)."""

from deepnetsbench.graph.derive import count_params, graph_from_spec
from deepnetsbench.graph.graph import Graph
from deepnetsbench.graph.trace import graph_from_module, trace_graph

__all__ = ["Graph", "graph_from_module", "graph_from_spec", "count_params", "trace_graph"]
