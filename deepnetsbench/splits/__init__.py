"""DeepNets-1M splits: generation, the HDF5 format, reading, predefined models."""

from deepnetsbench.splits.build import ALL_SPLITS, build_split
from deepnetsbench.splits.dataset import ArchRecord, DeepNets1M, generate_split

__all__ = ["ALL_SPLITS", "ArchRecord", "DeepNets1M", "build_split", "generate_split"]
