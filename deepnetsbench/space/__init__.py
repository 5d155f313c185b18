"""The DeepNets-1M architecture space: primitives, genotypes, torch networks, sampler."""

from deepnetsbench.space.genotype import ArchSpec, Genotype, NetArgs
from deepnetsbench.space.network import Network, build_model
from deepnetsbench.space.primitives import NODE_TYPES, PRIMITIVES
from deepnetsbench.space.sampler import GENERATOR_VERSION, SPLIT_CONFIGS, SplitConfig, sample_arch

__all__ = ["ArchSpec", "Genotype", "NetArgs", "Network", "build_model", "NODE_TYPES",
           "PRIMITIVES", "GENERATOR_VERSION", "SPLIT_CONFIGS", "SplitConfig", "sample_arch"]
