"""GHN-2 reference baseline: model, training, checkpoints and the evaluator plugin.

```python
from baselines.ghn2 import GHN2, GHN2Config, load_ghn
ghn, info = load_ghn("runs/ghn2/final.pt")
ghn.predict(model)                      # fills every parameter of any nn.Module in place
params = ghn.predict_params(graphs)     # differentiable, one {name: tensor} per graph
```
Training: ``python -m baselines.ghn2.train``; plugin: ``baselines/ghn2/method.py``.
"""

from baselines.ghn2.checkpoint import load_ghn, read_checkpoint, save_checkpoint
from baselines.ghn2.model import GHN2, GHN2Config, model_shapes

__all__ = ["GHN2", "GHN2Config", "load_ghn", "model_shapes", "read_checkpoint",
           "save_checkpoint"]
