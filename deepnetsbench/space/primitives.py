"""The vocabularies of the DeepNets-1M space, in their published order.

The order matters: GHN checkpoints index node-type embeddings by position in
:data:`NODE_TYPES`, so it must never change.
"""

from __future__ import annotations

from functools import lru_cache

#: Cell operations (the extended DARTS list of DeepNets-1M).
PRIMITIVES: tuple[str, ...] = (
    "none",
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
    "conv_1x1",
    "conv_7x1_1x7",
    "conv_3x3",
    "conv_5x5",
    "conv_7x7",
    "msa",
    "cse",
)

#: Node types of the computational graph.
NODE_TYPES: tuple[str, ...] = (
    "max_pool",
    "avg_pool",
    "sep_conv",
    "dil_conv",
    "conv",
    "msa",
    "cse",
    "sum",
    "concat",
    "input",
    "bias",
    "bn",
    "ln",
    "pos_enc",
    "glob_avg",
)

NODE_INDEX: dict[str, int] = {name: i for i, name in enumerate(NODE_TYPES)}

POOLING_OPS = frozenset({"max_pool_3x3", "avg_pool_3x3"})
#: Ops that own parameters (before normalisation layers are counted).
LEARNABLE_OPS = frozenset(
    {"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "conv_1x1",
     "conv_7x1_1x7", "conv_3x3", "conv_5x5", "conv_7x7", "msa", "cse"}
)
CONV_OPS = frozenset(
    {"sep_conv_3x3", "sep_conv_5x5", "dil_conv_3x3", "dil_conv_5x5", "conv_1x1",
     "conv_7x1_1x7", "conv_3x3", "conv_5x5", "conv_7x7"}
)
BIG_CONV_OPS = frozenset({"conv_5x5", "conv_7x7"})


@lru_cache(maxsize=256)  # ~110 calls per sampled net over 15 names: +28 % sampler throughput
def parse_op(name: str) -> tuple[str, int]:
    """Split an op name into its family and kernel size, as the official builder does.

    Tokens ``AxB`` give the kernel (the largest number) and are dropped from the family name;
    a second such token marks the factorised conv: ``conv_7x1_1x7`` -> ``("conv2", 7)``,
    ``sep_conv_5x5`` -> ``("sep_conv", 5)``, ``msa`` -> ``("msa", 0)``.
    """
    words: list[str] = []
    sizes: list[int] = []
    for token in name.split("_"):
        dims = token.split("x")
        if len(dims) == 2 and all(d.isdigit() for d in dims):
            sizes.append(max(int(d) for d in dims))
        else:
            words.append(token)
    return "_".join(words) + ("2" if len(sizes) > 1 else ""), max(sizes, default=0)
