"""The accuracy protocol: top-k arithmetic, BatchNorm batch statistics, state restored."""

import copy

import pytest
import torch
from torch import nn

from deepnetsbench.errors import BenchError
from deepnetsbench.eval.accuracy import eval_mode, evaluate_accuracy, topk_correct

torch.set_num_threads(1)


class FixedLogits(nn.Module):
    """Returns stored logits for the images' index (encoded in pixel [0,0,0])."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.register_buffer("table", logits)

    def forward(self, x):
        return self.table[x[:, 0, 0, 0].long()]


def test_topk_correct_known_logits():
    logits = torch.tensor([
        [0.9, 0.1, 0.0, 0.0, 0.0, 0.0, 0.0],  # label 0: top-1 hit
        [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.0],  # label 5: rank 5 -> top-5 hit only
        [0.1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.0],  # label 6: rank 7 -> miss
        [0.0, 0.5, 1.0, 0.4, 0.3, 0.2, 0.1],  # label 1: rank 2 -> top-5 hit only
    ])
    y = torch.tensor([0, 5, 6, 1])
    assert topk_correct(logits, y, (1, 5)) == [1, 3]
    assert topk_correct(logits, y, (1, 2, 7)) == [1, 2, 4]


def test_topk_clipped_to_num_classes():
    logits = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    y = torch.tensor([0, 2])  # both ranked last of 3
    assert topk_correct(logits, y, (1, 5)) == [0, 2]


def test_evaluate_accuracy_known_logits_and_batching():
    n, c = 50, 10
    g = torch.Generator().manual_seed(0)
    table = torch.randn(n, c, generator=g)
    y = torch.randint(0, c, (n,), generator=g)
    x = torch.arange(n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 3, 4, 4).contiguous()
    model = FixedLogits(table)
    top1_ref, top5_ref = (100.0 * k / n for k in topk_correct(table, y, (1, 5)))
    for bs in (1, 7, 64):  # 7 leaves a partial last batch: still every image counted
        top1, top5 = evaluate_accuracy(model, x, y, batch_size=bs)
        assert top1 == pytest.approx(top1_ref)
        assert top5 == pytest.approx(top5_ref)
    assert 0 < top1_ref < top5_ref < 100


def _bn_net() -> nn.Module:
    """Logits = pooled BN output of 2 channels; running stats strongly favour class 1."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.BatchNorm2d(2), nn.Dropout(0.9),
                        nn.AdaptiveAvgPool2d(1), nn.Flatten())
    bn = net[1]
    with torch.no_grad():  # deliberately wrong running statistics
        bn.running_mean.copy_(torch.tensor([50.0, -50.0]))
        bn.running_var.fill_(1e-2)
        bn.num_batches_tracked.fill_(7)
    return net


def test_bn_batch_mode_differs_from_running_and_leaves_buffers():
    net = _bn_net()
    net.train()  # evaluation must not depend on (or change) the caller's mode
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 3, 8, 8, generator=g)
    bn = net[1]
    before = {k: v.clone() for k, v in net.state_dict().items()}

    with eval_mode(net, "batch"):
        assert not net[2].training  # dropout off
        out_batch = net(x[:64])
        y = out_batch.argmax(1)  # labels the batch-stats model gets right
    assert 10 < int(y.sum()) < 54  # both classes occur
    with eval_mode(net, "running"):
        out_running = net(x[:64])
    assert not torch.allclose(out_batch, out_running)
    # Batch-mode outputs equal a manual batch normalisation (the BN layer in train mode).
    ref = copy.deepcopy(net).train()
    ref[2].eval()
    ref[1] = nn.BatchNorm2d(2, track_running_stats=False)
    ref[1].load_state_dict({"weight": bn.weight, "bias": bn.bias})
    with torch.no_grad():
        assert torch.allclose(ref(x[:64]), out_batch, atol=1e-5)

    top1_batch, _ = evaluate_accuracy(net, x[:64], y, batch_size=64, bn_mode="batch")
    top1_running, _ = evaluate_accuracy(net, x[:64], y, batch_size=64, bn_mode="running")
    assert top1_batch == 100.0
    assert top1_running == pytest.approx(100.0 * float(y.float().mean()))  # always class 1
    assert net.training and all(m.training for m in net.modules())
    assert bn.track_running_stats
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_bn_free_model_independent_of_batch_size():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    g = torch.Generator().manual_seed(2)
    x = torch.randn(37, 3, 8, 8, generator=g)
    y = torch.randint(0, 5, (37,), generator=g)
    results = {bs: evaluate_accuracy(net, x, y, batch_size=bs) for bs in (1, 5, 64)}
    assert results[1] == results[5] == results[64]


def test_bad_input_is_bench_error():
    net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 2 * 2, 2))
    x = torch.randn(4, 3, 2, 2)
    with pytest.raises(BenchError):
        evaluate_accuracy(net, x, torch.zeros(3, dtype=torch.int64))
    with pytest.raises(BenchError):
        evaluate_accuracy(net, x, torch.zeros(4, dtype=torch.int64), bn_mode="nope")
    with pytest.raises(BenchError):
        evaluate_accuracy(net, x, torch.zeros(4, dtype=torch.int64), batch_size=0)
    with pytest.raises(BenchError):
        evaluate_accuracy(net, x[:0], torch.zeros(0, dtype=torch.int64))
