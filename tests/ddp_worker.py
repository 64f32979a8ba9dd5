"""Run by tests/test_ddp.py under torchrun (not a test itself): every family
aigc.train knows trains two tiny epochs with the Trainer, as one of several
processes, into OUT/<family>; and OUT/batch_error_<rank>.txt says why a
global batch of 33 was refused.

    python -m torch.distributed.run --standalone --nproc_per_node=2 -m tests.ddp_worker OUT
"""
from __future__ import annotations

import sys
from pathlib import Path

from aigc import distributed
from aigc.families import FAMILIES
from aigc.train import Trainer

from .conftest import TINY, synthetic_set


def run(out: Path, kind: str, device="cpu") -> Trainer:
    """The run the test compares: the same on one process and on several."""
    t = Trainer(kind, "mnist", out / kind, batch_size=32, seed=0, device=device, model_kwargs=TINY[kind],
                train_set=synthetic_set(128), test_set=synthetic_set(64, seed=1), progress=False)
    t.train(2)
    return t


if __name__ == "__main__":
    device = distributed.init("cpu", timeout_s=60)
    done = False
    try:
        try:   # a global batch that does not split evenly across the processes
            Trainer("vae", "mnist", sys.argv[1], batch_size=33, device=device, train_set=synthetic_set(64))
        except ValueError as e:
            (Path(sys.argv[1]) / f"batch_error_{distributed.rank()}.txt").write_text(str(e))
        for kind in FAMILIES:
            run(Path(sys.argv[1]), kind, device)
        done = True
    finally:
        distributed.close(wait=done)
