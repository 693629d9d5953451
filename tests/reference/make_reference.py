#!/usr/bin/env python3
"""Produces torch_reference.json: forward and backward values of engine operations and optimizer trajectories,
computed by PyTorch in float64 from float32-representable inputs.

Run with Debian's python3-torch (never a dependency of the project, only of this script):

    /usr/bin/python3 tests/reference/make_reference.py > tests/reference/torch_reference.json

The output records the seed and the torch version. Inputs are rounded to float32 so that the engine's float32
kernels see exactly the same numbers.
"""
import json
import torch
import torch.nn.functional as F

SEED = 20261121
torch.manual_seed(SEED)


def r(*shape):
    return torch.randn(*shape).float().double()


def enc(t):
    t = t.detach().double().contiguous()
    return {"shape": list(t.shape), "data": [float(v) for v in t.reshape(-1).tolist()]}


cases = {}


def case(name, inputs, fn, upstream_shape=None):
    """inputs: dict name -> tensor (leaf, requires grad); fn returns the output tensor."""
    leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
    out = fn(**leaves)
    g = r(*out.shape) if out.dim() > 0 else torch.tensor(1.0, dtype=torch.float64)
    out.backward(g)
    cases[name] = {
        "inputs": {k: enc(v) for k, v in inputs.items()},
        "upstream": enc(g),
        "output": enc(out),
        "grads": {k: enc(v.grad) for k, v in leaves.items() if v.grad is not None},
    }
    return cases[name]


for name, (n, c, h, w, o, k, stride, pad, dil, groups, bias) in {
    "conv2d_basic": (2, 3, 7, 6, 4, 3, 1, 0, 1, 1, True),
    "conv2d_stride_pad": (2, 4, 9, 8, 6, 3, 2, 1, 1, 1, True),
    "conv2d_dilation_groups": (1, 4, 10, 9, 6, 3, 1, 2, 2, 2, False),
    "conv2d_1x1_stride2": (3, 5, 8, 8, 4, 1, 2, 0, 1, 1, False),
}.items():
    ins = {"x": r(n, c, h, w), "weight": r(o, c // groups, k, k) * 0.3}
    if bias:
        ins["bias"] = r(o)
    cases_entry = case(name, ins, lambda x, weight, bias=None: F.conv2d(x, weight, bias, stride, pad, dil, groups))
    cases_entry["config"] = {"stride": stride, "padding": pad, "dilation": dil, "groups": groups}

case("linear", {"x": r(5, 7), "weight": r(3, 7), "bias": r(3)}, lambda x, weight, bias: F.linear(x, weight, bias))

for training in (True, False):
    x = r(4, 3, 5, 5) * 2 + 0.5
    rm, rv = r(3) * 0.1, torch.rand(3).float().double() + 0.5
    rm_t, rv_t = rm.clone(), rv.clone()
    name = "batch_norm2d_train" if training else "batch_norm2d_eval"
    e = case(name, {"x": x, "weight": r(3), "bias": r(3)},
             lambda x, weight, bias: F.batch_norm(x, rm_t, rv_t, weight, bias, training, 0.1, 1e-5))
    e["running_before"] = {"mean": enc(rm), "var": enc(rv)}
    e["running_after"] = {"mean": enc(rm_t), "var": enc(rv_t)}

e = case("max_pool2d", {"x": r(2, 3, 9, 8)}, lambda x: F.max_pool2d(x, 3, 2, 1)); e["config"] = {"kernel": 3, "stride": 2, "padding": 1}
e = case("avg_pool2d", {"x": r(2, 3, 9, 8)}, lambda x: F.avg_pool2d(x, 3, 2, 1)); e["config"] = {"kernel": 3, "stride": 2, "padding": 1}
e = case("avg_pool2d_exclude_pad", {"x": r(2, 3, 9, 8)}, lambda x: F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)); e["config"] = {"kernel": 3, "stride": 2, "padding": 1}
e = case("adaptive_avg_pool2d", {"x": r(2, 3, 7, 10)}, lambda x: F.adaptive_avg_pool2d(x, (3, 4))); e["config"] = {"out_h": 3, "out_w": 4}

targets = [2, 0, 4, 1, 3, 2]
class_weight = torch.tensor([1.0, 2.0, 0.5, 1.5, 1.0], dtype=torch.float64)
for name, kw in {
    "cross_entropy": {},
    "cross_entropy_weighted": {"weight": class_weight},
    "cross_entropy_smoothing": {"label_smoothing": 0.1},
    "cross_entropy_weighted_smoothing": {"weight": class_weight, "label_smoothing": 0.2},
}.items():
    e = case(name, {"logits": r(6, 5) * 2}, lambda logits: F.cross_entropy(logits, torch.tensor(targets), **kw))
    e["targets"] = targets
    e["config"] = {"label_smoothing": kw.get("label_smoothing", 0.0),
                   "weight": [float(v) for v in kw["weight"].tolist()] if "weight" in kw else None}

case("gelu", {"x": r(3, 7) * 2}, lambda x: F.gelu(x))
case("log_softmax", {"x": r(4, 6) * 3}, lambda x: F.log_softmax(x, dim=1))
case("softmax", {"x": r(4, 6) * 3}, lambda x: F.softmax(x, dim=1))

# Optimizer trajectories: a linear layer fitted to fixed data by MSE; parameters after each of 10 steps.
x_data, y_data = r(8, 4), r(8, 3)
w0, b0 = r(3, 4) * 0.5, r(3) * 0.1
for name, make in {
    "sgd_momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=5e-4),
    "sgd_nesterov": lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
    "adam": lambda ps: torch.optim.Adam(ps, lr=0.01, weight_decay=1e-2),
    "adamw": lambda ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1),
}.items():
    w, b = w0.clone().requires_grad_(True), b0.clone().requires_grad_(True)
    opt = make([w, b])
    steps = []
    for _ in range(10):
        opt.zero_grad()
        F.mse_loss(F.linear(x_data, w, b), y_data).backward()
        opt.step()
        steps.append({"weight": enc(w), "bias": enc(b)})
    cases["optim_" + name] = {"x": enc(x_data), "y": enc(y_data), "weight0": enc(w0), "bias0": enc(b0),
                              "hyper": opt.defaults | {"betas": list(opt.defaults.get("betas", (0, 0)))}, "steps": steps}

# SGDR: CosineAnnealingWarmRestarts stepped once per mini-batch; the learning rate before each step.
for name, (max_lr, min_lr, spe, cycle_len, cycle_mult, cycles) in {
    "sgdr_mult1": (0.1, 0.0, 7, 1, 1, 3),
    "sgdr_mult2": (0.05, 1e-4, 5, 1, 2, 3),
    "sgdr_len2_mult2": (0.2, 0.0, 4, 2, 2, 3),
}.items():
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=max_lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingWarmRestarts(opt, T_0=cycle_len * spe, T_mult=cycle_mult, eta_min=min_lr)
    total = sum(cycle_len * spe * cycle_mult ** i for i in range(cycles))
    lrs = []
    for _ in range(total):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    cases["schedule_" + name] = {"max_lr": max_lr, "min_lr": min_lr, "steps_per_epoch": spe, "cycle_len": cycle_len,
                                 "cycle_mult": cycle_mult, "cycles": cycles, "lr": lrs}

print(json.dumps({"torch_version": torch.__version__, "seed": SEED, "cases": cases}, default=float))
