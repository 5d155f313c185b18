"""GHN baselines: GHN-2, GHN-1 and the MLP hypernetwork as released (Knyazev et al., 2021),
their training, checkpoints (ours and the official ones) and the evaluator plugin.

```python
from baselines.ghn2 import GHN2, GHN2Config, load_ghn
ghn, info = load_ghn("ghn2_cifar10.pt")          # an official checkpoint, or one of ours
ghn.predict(model)                      # fills every parameter of any nn.Module in place
params = ghn.predict_params(graphs)     # differentiable, one {name: tensor} per graph
```
Training: ``python -m baselines.ghn2.train``; plugin: ``baselines/ghn2/method.py``.
"""

from baselines.ghn2.checkpoint import describe, load_ghn, read_checkpoint, save_checkpoint
from baselines.ghn2.model import GHN2, GHN2Config, model_shapes

__all__ = ["GHN2", "GHN2Config", "describe", "load_ghn", "model_shapes", "read_checkpoint",
           "save_checkpoint"]
