"""Image datasets: registry, archive loader, uint8 HDF5 cache, synthetic images, fetchers.

```python
from deepnetsbench.data import load_dataset
ds = load_dataset("cifar10")                  # from the cache (see `deepnets-bench download`)
x, y = ds.test_tensors(image_size=32)         # float32 [N, 3, 32, 32] normalized, int64 [N]
```
"""

from deepnetsbench.data.archive import load_archive
from deepnetsbench.data.fetch import load_dataset
from deepnetsbench.data.images import ImageDataset
from deepnetsbench.data.registry import DATASETS, DatasetInfo
from deepnetsbench.data.synthetic import synthetic_dataset

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "ImageDataset",
    "load_archive",
    "load_dataset",
    "synthetic_dataset",
]
