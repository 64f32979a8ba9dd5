"""Training on several processes (torchrun + DistributedDataParallel, gloo on
the CPU): two processes end where one does, rank 0 writes a checkpoint that
loads, --resume changes the number of processes, and a dead process stops the
others with a plain message instead of a hang."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from aigc.families import FAMILIES

import aigc
from aigc import train
from aigc.io import read_jsonl

from .conftest import TINY_GAN
from .ddp_worker import run
from .test_train import tiny_classifier
from .tiny_demo import write_synthetic_datasets

REPO = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
NOT_LOSSES = {"epoch_time_s", "images_per_s", "test_accuracy"}


def torchrun(nproc: int, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *args]
    done = subprocess.run(cmd, cwd=REPO, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """The real datasets when $AIGC_DATA_DIR has them (the runs take the first
    256 images), else synthetic ones in the same format."""
    return os.environ.get("AIGC_DATA_DIR") or str(write_synthetic_datasets(tmp_path_factory.mktemp("data")))


def test_every_family_trains_on_two_processes_as_on_one(tmp_path):
    (tmp_path / "two").mkdir()
    torchrun(2, "-m", "tests.ddp_worker", str(tmp_path / "two"))
    for rank in (0, 1):
        assert "batch size 33 is the global batch, split evenly across the 2 processes: choose a multiple of 2" \
            == (tmp_path / "two" / f"batch_error_{rank}.txt").read_text()
    for kind in FAMILIES:
        one = run(tmp_path / "one", kind)
        rows = [read_jsonl(tmp_path / n / kind / "history.jsonl")[-1] for n in ("one", "two")]
        assert (rows[0]["processes"], rows[1]["processes"]) == (1, 2)
        losses = [k for k, v in rows[0].items() if isinstance(v, float) and k not in NOT_LOSSES]
        assert losses, rows
        for k in losses:   # the same global batches and seed; the noise differs per process
            assert rows[1][k] == pytest.approx(rows[0][k], rel=0.03, abs=0.02), (kind, k, rows)
        state = train.Trainer.read_state(tmp_path / "two" / kind)
        assert len(state["rng"]["noise_by_rank"]) == 2               # each process's noise, for --resume
        if kind == "vae":   # the class prior: fitted on the whole training set, as on one process
            two = aigc.load(str(tmp_path / "two" / kind), device="cpu")
            torch.testing.assert_close(two.class_mean, one.recipe.modules["vae"].class_mean, atol=0.05, rtol=0.05)


def test_torchrun_cli_writes_once_and_resumes_on_one_process(tmp_path, data_dir):
    clf = str(tiny_classifier(tmp_path / "clf"))
    args = ["gan", "--dataset", "mnist", "--epochs", "2", "--max-images", "256", "--batch-size", "32",
            "--model-kwargs", json.dumps(TINY_GAN), "--data-dir", data_dir, "--eval-classifier", clf, "--no-progress"]
    two, one = tmp_path / "two", tmp_path / "one"
    done = torchrun(2, "-m", "aigc.train", *args, "--out", str(two), "--progress-file", str(two / "progress.json"))
    assert done.stdout.count("epoch 2/2") == 1                      # rank 0 alone reports
    assert train.main([*args, "--out", str(one)]) == 0
    rows = {n: read_jsonl(n / "history.jsonl") for n in (one, two)}
    assert [r["epoch"] for r in rows[two]] == [1, 2] and {r["processes"] for r in rows[two]} == {2}
    for k in ("d_loss", "g_loss"):
        assert rows[two][-1][k] == pytest.approx(rows[one][-1][k], rel=0.03), (k, rows)
    assert {"class_accuracy", "frechet"} <= set(rows[two][-1])        # judged once, by rank 0
    assert json.loads((two / "progress.json").read_text())["state"] == "finished"
    meta = json.loads((two / "training.json").read_text())
    assert (meta["processes"], meta["devices"], meta["nodes"], meta["backend"]) == (2, 1, 1, "gloo")
    assert "| processes | 2 processes on 1 device (cpu) |" in (two / "README.md").read_text()
    assert aigc.load(str(two), device="cpu").sample(4, labels=3, seed=0).shape == (4, 1, 28, 28)

    # 2 processes, then 1: the state holds everything a resume needs, whatever the count
    assert train.main(["gan", "--epochs", "3", "--resume", "--out", str(two), "--data-dir", data_dir,
                       "--eval-classifier", clf, "--no-progress"]) == 0
    rows = read_jsonl(two / "history.jsonl")
    assert [(r["epoch"], r["step"], r["processes"]) for r in rows] == [(1, 8, 2), (2, 16, 2), (3, 24, 1)]
    assert ("| processes | epochs 1-2: 2 processes on 1 device (cpu); epoch 3: 1 process on 1 device (cpu) |"
            in (two / "README.md").read_text())
    assert aigc.load(str(two), device="cpu").sample(4, labels=3, seed=0).shape == (4, 1, 28, 28)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_process_stops_the_other_with_a_plain_message(tmp_path, data_dir):
    """Two processes started as torchrun would; rank 1 is killed mid-run and
    rank 0 must exit on its own, saying why, well within --dist-timeout."""
    out, progress = tmp_path / "run", tmp_path / "progress.json"
    port = free_port()
    procs = []
    for rank in (0, 1):
        env = {**ENV, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2",
               "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)}
        cmd = [sys.executable, "-m", "aigc.train", "vae", "--dataset", "mnist", "--epochs", "1000", "--max-images",
               "256", "--batch-size", "32", "--model-kwargs", '{"ch": 4}', "--data-dir", data_dir, "--out", str(out),
               "--eval-classifier", str(tiny_classifier(tmp_path / "clf")), "--no-progress",
               "--progress-file", str(progress), "--dist-timeout", "60"]
        procs.append(subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    try:
        deadline = time.monotonic() + 90
        while not (out / "history.jsonl").exists():   # an epoch is done: both are training
            assert time.monotonic() < deadline and procs[0].poll() is None, procs[0].communicate()
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        t0 = time.monotonic()
        _, err = procs[0].communicate(timeout=30)
        waited = time.monotonic() - t0
    finally:
        for p in procs:
            p.kill()
            p.wait()
    assert procs[0].returncode == 1, err
    assert "error: process 0 of 2 stops: another process died or did not answer within --dist-timeout" in err
    assert "Traceback" not in err and waited < 20
    assert json.loads(progress.read_text())["state"] == "failed"
    assert train.Trainer.read_state(out)["epoch"] >= 1                # the finished epochs stay for --resume


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torchrun_on_cuda_uses_nccl_and_bf16(tmp_path, data_dir):
    """One process per GPU (up to 2): nccl, SyncBatchNorm, bf16 autocast; a checkpoint that samples."""
    n = min(2, torch.cuda.device_count())
    out = tmp_path / "run"
    torchrun(n, "-m", "aigc.train", "gan", "--dataset", "mnist", "--epochs", "1", "--max-images", "1024",
             "--model-kwargs", json.dumps(TINY_GAN), "--data-dir", data_dir, "--out", str(out), "--no-progress",
             "--eval-classifier", str(tiny_classifier(tmp_path / "clf")))
    meta = json.loads((out / "training.json").read_text())
    assert (meta["processes"], meta["devices"], meta["backend"]) == (n, n, "nccl")
    row = read_jsonl(out / "history.jsonl")[-1]
    assert row["device"] == "cuda:0" and all(torch.isfinite(torch.tensor([row["d_loss"], row["g_loss"]])))
    assert aigc.load(str(out), device="cuda").sample(4, labels=3, seed=0).shape == (4, 1, 28, 28)
