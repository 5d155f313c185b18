"""Dataset-episode suites: the architecture is fixed, the *data* are unseen.

```python
from deepnetsbench.episodes import EpisodeSuite, build_target
suite = EpisodeSuite(kind="episodes-intra")          # verified against its manifest
ep = suite.episode("test", 0)                         # classes (label order), indices
t = suite.tensors(ep)                                 # support/query tensors + labels
model = build_target("convnet4", num_classes=ep.num_classes)
```

Build suites with ``deepnets-bench build-episodes``; evaluate methods with
:func:`evaluate_episodes` (what ``deepnets-bench eval --suite episodes-*`` runs).
See docs/episodes.md. Names are imported lazily so that the CLI's ``--help`` does not
import torch.
"""

from __future__ import annotations

from deepnetsbench.lazy import lazy_exports

_EXPORTS = {
    "EpisodeConfig": "build", "build_suite": "build", "class_pools": "build",
    "SupportTrainingSpeedup": "evaluate", "evaluate_episodes": "evaluate",
    "evaluate_from_config": "evaluate", "EpisodeArch": "evaluate",
    "describe_suite": "info", "suite_summary": "info",
    "Episode": "suite", "EpisodeSuite": "suite", "EpisodeTensors": "suite",
    "default_suite_path": "suite", "verify_suite": "suite", "write_suite": "suite",
    "TARGETS": "targets", "build_target": "targets", "convnet4": "targets",
    "target_info": "targets",
}

__all__ = sorted(_EXPORTS)


__getattr__ = lazy_exports(__name__, _EXPORTS)
