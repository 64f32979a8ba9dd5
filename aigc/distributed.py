"""Training on several processes: torchrun starts them, DistributedDataParallel
keeps their models equal. The plumbing aigc.train needs, and nothing else:

    torchrun --nproc_per_node=4 -m aigc.train gan --dataset mnist --epochs 10 --out my-models/gan-mnist

torchrun puts RANK, WORLD_SIZE, LOCAL_RANK and the rendezvous address in each
process's environment; init() joins the process group (nccl on CUDA, where
process LOCAL_RANK uses cuda:LOCAL_RANK; gloo on the CPU). Without torchrun no
group exists, every helper here is a no-op, and a run is the one-process run
it always was.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import functools
import inspect
import os
import socket

import torch
import torch.distributed as dist
import torch.nn as nn
from torch.nn.parallel import DistributedDataParallel

from .model import pick_device

DEFAULT_TIMEOUT_S = 600   # longer than rank 0's end-of-epoch work (grid, quality check, files) while the others wait


def launched() -> bool:
    """True in a process started by torchrun (or anything else that sets its variables)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def init(device: str = "auto", timeout_s: float = DEFAULT_TIMEOUT_S) -> torch.device:
    """Join torchrun's process group; returns this process's device. A
    collective that waits longer than timeout_s for a process (dead, or hung)
    raises instead of hanging."""
    device = pick_device(device)
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK {local}, but this machine has {torch.cuda.device_count()} CUDA "
                             f"device(s): start at most that many processes per node (--nproc_per_node)")
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo", timeout=dt.timedelta(seconds=timeout_s))
    return device


def close(wait: bool = True) -> None:
    """Leave the process group. wait: meet the others at a barrier first (when
    all of them are known to be closing), because a gloo process that tears
    down its connections while a peer is still mid-collective can abort that
    peer (SIGABRT, "terminate called without an active exception"). After an
    error, don't wait: a peer may never arrive."""
    if dist.is_initialized():
        if wait:
            try:
                dist.barrier()
            except RuntimeError:   # a peer is gone already: nothing left to wait for
                pass
        dist.destroy_process_group()


def active() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if active() else 0


def world_size() -> int:
    return dist.get_world_size() if active() else 1


def describe(device: torch.device) -> dict:
    """How many processes, devices and machines train together (a collective):
    {"processes", "devices", "nodes", "backend"}. Processes sharing one CPU
    count as one device."""
    if not active():
        return {"processes": 1, "devices": 1, "nodes": 1, "backend": None}
    places = [None] * world_size()
    dist.all_gather_object(places, (socket.gethostname(), str(device)))
    return {"processes": len(places), "devices": len(set(places)), "nodes": len({h for h, _ in places}),
            "backend": dist.get_backend()}


# ---- the data: one shared permutation per epoch, a disjoint slice per process --------
def shard(batch: torch.Tensor) -> torch.Tensor:
    """This process's part of a global batch (of indices into the training
    set): the rank-th of world_size equal slices. Every process draws the same
    permutation each epoch, so their parts are disjoint and together they read
    exactly the batches one process would."""
    w = world_size()
    if w == 1:
        return batch
    n = len(batch) // w
    return batch[rank() * n:(rank() + 1) * n]


# ---- the models: DistributedDataParallel around whatever a recipe trains ---------------
class _Methods(nn.Module):
    """module.<method>(...) as forward, so DistributedDataParallel can run any
    of a model's methods (a VAE trains through training_loss, not forward)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, method: str, *args, **kwargs):
        return getattr(self.module, method)(*args, **kwargs)


class Replica:
    """What a recipe's step() sees as modules[name] under DDP. Calling it, or
    one of the model's own methods (forward, training_loss, ...), runs through
    DistributedDataParallel, whose backward averages the gradients across the
    processes; nn.Module's methods (parameters, buffers, train, ...) and plain
    attributes (z_dim) are the module's own."""

    def __init__(self, module: nn.Module, device: torch.device):
        self.module = module
        # Buffers are not broadcast from rank 0 at every forward: BatchNorm
        # statistics are SyncBatchNorm's (CUDA) or averaged each epoch (sync_epoch_end).
        self.ddp = DistributedDataParallel(_Methods(module), forward_sync_buffers=False,
                                           device_ids=[device.index] if device.type == "cuda" else None)

    def __call__(self, *args, **kwargs):
        return self.ddp("forward", *args, **kwargs)

    def __getattr__(self, name: str):
        value = getattr(self.module, name)
        if inspect.ismethod(value) and (name == "forward" or not hasattr(nn.Module, name)):
            return functools.partial(self.ddp, name)
        return value


def replicate(modules: dict[str, nn.Module], optimizers: dict, device: torch.device) -> dict[str, Replica]:
    """A Replica of each module an optimizer trains (an EMA copy is not
    trained: it stays as it is). On CUDA their BatchNorm layers become
    SyncBatchNorm first (same parameters and buffers), so a batch is
    normalised with the statistics of the whole global batch, as on one
    process; torch's SyncBatchNorm runs on GPUs only, so on the CPU each
    process normalises by its own part and the running statistics are
    averaged every epoch. `modules` is updated in place if a root is replaced."""
    trained = {id(p) for opt in optimizers.values() for group in opt.param_groups for p in group["params"]}
    replicas = {}
    for name, module in modules.items():
        if any(id(p) in trained for p in module.parameters()):
            if device.type == "cuda":
                modules[name] = module = nn.SyncBatchNorm.convert_sync_batchnorm(module)
            replicas[name] = Replica(module, device)
    return replicas


@contextlib.contextmanager
def through(recipe, replicas: dict[str, Replica]):
    """Within: recipe.modules holds the Replicas in place of the modules they
    wrap, so an unchanged recipe's step() trains through DDP."""
    if not replicas:
        yield
        return
    modules = recipe.modules
    recipe.modules = {**modules, **replicas}
    try:
        yield
    finally:
        recipe.modules = modules


# ---- collectives at step and epoch ends --------------------------------------------------
def any_true(flag: bool, device: torch.device) -> bool:
    """True on every process when it is true on any (a stop that all obey at the same step)."""
    if not active():
        return flag
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Each value averaged across the processes (the same keys on each)."""
    if not active():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / world_size()).tolist()))


def all_gather(obj) -> list:
    """obj from every process, in rank order (e.g. each process's RNG state)."""
    if not active():
        return [obj]
    out = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def sync_epoch_end(modules: dict[str, nn.Module], replicas: dict[str, Replica]) -> None:
    """Make every process's modules equal before rank 0 saves them: average the
    floating-point buffers (BatchNorm running statistics) and the modules DDP
    does not train (EMA copies, which follow identical
    weights, so averaging keeps them as they are); and check that DDP kept the
    trained ones equal: a recipe that calls a module outside step() (through
    a submodule, say) trains each process's copy apart, and that is an error."""
    if not active():
        return
    w = world_size()
    for name, module in modules.items():
        tensors = list(module.buffers()) + ([] if name in replicas else list(module.parameters()))
        for t in tensors:
            if t.is_floating_point():
                dist.all_reduce(t.data)
                t.data.div_(w)
    apart = []
    for name, replica in replicas.items():
        for pname, p in replica.module.named_parameters():
            first = p.detach().clone()
            dist.broadcast(first, src=0)
            if not torch.allclose(p.detach(), first, rtol=1e-4, atol=1e-6):
                apart.append(f"{name}.{pname}")
    apart = sorted({a for part in all_gather(apart) for a in part})   # so that every process raises
    if apart:
        raise RuntimeError(f"weights differ between processes ({', '.join(apart[:3])}): the recipe's step() must "
                           "call its modules (or their own methods), not their submodules, so that "
                           "DistributedDataParallel averages the gradients")


def lost(error: BaseException) -> bool:
    """Whether an error is a collective that failed: another process died, or
    did not answer within the timeout (gloo raises a RuntimeError naming
    itself; nccl a DistBackendError)."""
    return isinstance(error, dist.DistError) or "gloo" in str(error)
