"""deepnets-bench: the benchmark suite for parameter prediction."""

__version__ = "0.1.0"

__all__ = ["__version__", "DeepNets1M"]


def __getattr__(name: str):
    # Lazy so that `import deepnetsbench` stays cheap and torch-free for the CLI's help.
    if name == "DeepNets1M":
        from deepnetsbench.splits.dataset import DeepNets1M

        return DeepNets1M
    raise AttributeError(name)
