"""Several devices and machines: TF_CONFIG checks, and real runs of two worker processes.

The multi-worker tests start two processes on localhost (free ports picked at test time), which
is the same code path as two machines except for the network.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import CIFAR_DIR, ROOT, WEIGHTS, requires_cifar, requires_weights

from cifar.cli import main
from cifar.distributed import read_tf_config
from cifar.errors import ConfigError

HELPER = ROOT / "tests" / "distributed_worker.py"
STARTED: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_process_left():
    """Kill the children a failed test left running (they would hold ports and cores)."""
    yield
    while STARTED:
        proc = STARTED.pop()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def free_ports(n: int) -> list[int]:
    """``n`` distinct ports nobody listens on right now."""
    socks = [socket.socket() for _ in range(n)]
    try:
        for s in socks:
            s.bind(("localhost", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def tf_config(ports: list[int], index: int) -> str:
    workers = [f"localhost:{p}" for p in ports]
    return json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})


def env_for(tmp_path, tf_config_value: str | None = None) -> dict:
    """Environment of a child process: this checkout first on the path, own temp folder."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "tests")])
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CIFAR10_DIR"] = str(CIFAR_DIR)
    env["MOBILENETV2_WEIGHTS"] = str(WEIGHTS)
    # Scratch folders of the workers land here, so the test can see they were removed.
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(tmp_path / "tmp")
    env.pop("TF_CONFIG", None)
    if tf_config_value:
        env["TF_CONFIG"] = tf_config_value
    return env


def start(args: list[str], env: dict, log_path) -> subprocess.Popen:
    """Start ``python ARGS`` in the checkout, output (both streams) to ``log_path``."""
    log = open(log_path, "w")  # noqa: SIM115 - the child writes it until finish() reads it
    proc = subprocess.Popen(
        [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    proc.log_path = log_path
    STARTED.append(proc)
    log.close()  # the child holds its own copy of the descriptor
    return proc


def finish(procs: list[subprocess.Popen], timeout: float = 400) -> list[str]:
    """Wait for every process; on a failure or a hang kill them all and show the logs."""
    deadline = time.monotonic() + timeout
    try:
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        pass
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    outputs = [p.log_path.read_text() for p in procs]
    for p, out in zip(procs, outputs, strict=True):
        assert p.returncode == 0, out[-4000:]
    return outputs


def scratch_folders(tmp_path) -> list:
    """The scratch folders of non-chief workers left in the test's temp folder."""
    return sorted((tmp_path / "tmp").glob("cifar-worker*"))


def max_difference(a, b) -> float:
    with np.load(a) as x, np.load(b) as y:
        assert x.files == y.files
        return max(float(np.abs(x[k] - y[k]).max()) for k in x.files)


# --------------------------------------------------------------------------- TF_CONFIG


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "needs TF_CONFIG"),
        ("{not json", "not valid JSON"),
        ('["a"]', "must be a JSON object"),
        ('{"cluster": {}, "task": {"type": "worker", "index": 0}}', '"worker" list'),
        ('{"cluster": {"worker": ["a:1"], "ps": ["b:2"]}}', 'only "worker" tasks'),
        (
            '{"cluster": {"worker": ["nohost"]}, "task": {"type": "worker", "index": 0}}',
            "host:port",
        ),
        (
            '{"cluster": {"worker": ["a:1", "a:1"]}, "task": {"type": "worker", "index": 0}}',
            "distinct",
        ),
        ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "chief", "index": 0}}', '"task" must'),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "0 to 1",
        ),
    ],
)
def test_malformed_tf_config_is_one_clear_error(value, message):
    env = {} if value is None else {"TF_CONFIG": value}
    with pytest.raises(ConfigError, match=message):
        read_tf_config(env)


def test_tf_config_names_the_workers_and_the_chief():
    cluster = read_tf_config({"TF_CONFIG": tf_config([1234, 1235], 1)})
    assert cluster.workers == ("localhost:1234", "localhost:1235")
    assert (cluster.index, cluster.num_workers, cluster.is_chief) == (1, 2, False)


def test_one_process_is_its_own_chief_and_broadcasts_to_itself():
    import tensorflow as tf

    from cifar.distributed import worker_role
    from cifar.distributed.rundir import broadcast_text

    role = worker_role(tf.distribute.get_strategy())
    assert (role.index, role.count, role.is_chief, role.prefix) == (0, 1, True, "")
    path = "runs/smoke-20261130-195855-ü"  # non-ASCII survives the byte encoding
    assert broadcast_text(tf.distribute.get_strategy(), path) == path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--strategy", "multiworker"], "needs TF_CONFIG"),
        (["--strategy", "ring"], "strategy: must be one of default, mirrored, multiworker"),
    ],
)
def test_cli_strategy_errors_are_one_line(monkeypatch, capsys, args, message):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert main(["train", "smoke", *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_a_multiworker_run_can_be_finished_on_one_process(tmp_path, monkeypatch):
    from cifar.config import load_config
    from cifar.trainer import resume_trainer

    monkeypatch.delenv("TF_CONFIG", raising=False)
    config = load_config("smoke", ["strategy=multiworker"]).to_dict()
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="needs TF_CONFIG"):
        resume_trainer(tmp_path)  # the run's own strategy, and no cluster here
    trainer = resume_trainer(tmp_path, "default")
    assert trainer.config.strategy == "default" and not trainer.role.multiworker
    assert trainer.run_dir == trainer.shared_run_dir == tmp_path


# --------------------------------------------------------------------------- equal to one process


def one_process(tmp) -> subprocess.Popen:
    """Start the reference: one epoch (6 steps of 32 synthetic images), one process, one device.

    Its weights land in ``tmp / "weights.npz"``; it runs beside the processes it is compared
    with (start-up and tracing are mostly single-threaded, so the wall time overlaps).
    """
    args = [str(HELPER), "default", str(tmp / "runs"), str(tmp / "weights.npz")]
    return start(args, env_for(tmp), tmp / "log")


@pytest.mark.slow
def test_two_workers_train_like_one_process(tmp_path, tmp_path_factory):
    single = tmp_path_factory.mktemp("single")
    reference = one_process(single)
    ports = free_ports(2)
    procs = []
    for i in range(2):
        args = [str(HELPER), "multiworker", str(tmp_path / "runs"), str(tmp_path / f"w{i}.npz")]
        env = env_for(tmp_path, tf_config(ports, i))
        procs.append(start(args, env, tmp_path / f"worker{i}.log"))
    outputs = finish(procs, timeout=300)
    finish([reference], timeout=300)
    # Identical on both workers, and what one process computes on the whole global batch
    # (each worker sees only half of every batch: alone, it would train on other gradients).
    assert max_difference(tmp_path / "w0.npz", tmp_path / "w1.npz") == 0.0
    assert max_difference(tmp_path / "w0.npz", single / "weights.npz") < 1e-5
    assert [json.loads(o.strip().splitlines()[-1])["replicas"] for o in outputs] == [2, 2]
    assert "[worker 1/2] [phase 1/1 a] epoch 1/1" in outputs[1]
    assert "have crashed" not in outputs[0]  # worker 1 waited for the chief before exiting
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1, runs  # only the chief wrote a run folder
    assert {"config.json", "history.json", "metrics.json", "best_model.keras"} <= {
        p.name for p in runs[0].iterdir()
    }
    assert scratch_folders(tmp_path) == []  # the worker's scratch copy is gone


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_trains_like_one_device(tmp_path, tmp_path_factory):
    # The Trainer's own shuffled pipeline: every epoch's order is a function of (seed, epoch),
    # so the batch fit draws under a strategy before training does not shift the order.
    single = tmp_path_factory.mktemp("single")
    reference = one_process(single)
    args = [str(HELPER), "mirrored2", str(tmp_path / "runs"), str(tmp_path / "w.npz")]
    out, _ = finish([start(args, env_for(tmp_path), tmp_path / "log"), reference], timeout=300)
    assert json.loads(out.strip().splitlines()[-1])["replicas"] == 2
    assert max_difference(tmp_path / "w.npz", single / "weights.npz") < 1e-5


# --------------------------------------------------------------------------- the smoke run


def smoke_args(*extra: str) -> list[str]:
    """``cifar train smoke`` on a small subset: 1 frozen epoch, then 2 fine-tuning epochs."""
    sets = [
        "data.train_subset=300",
        "data.test_subset=1000",
        "phases.0.epochs=1",
        "phases.1.epochs=2",
        "callbacks.confusion_matrix_every=0",  # saves a minute of tracing on a loaded machine
        "phases.1.patience=0",
        'callbacks.extra=["distributed_worker:SaveWeights"]',
    ]
    return ["-m", "cifar.cli", "train", *extra, *[a for s in sets for a in ("--set", s)]]


def wait_for_state(state_file, done, procs, timeout: float = 400) -> dict:
    """Poll the chief's checkpoint until ``done(state)``; fail if a worker exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert all(p.poll() is None for p in procs), [p.log_path.read_text()[-3000:] for p in procs]
        if state_file.is_file():
            state = json.loads(state_file.read_text())
            if done(state):
                return state
        time.sleep(0.1)
    raise AssertionError(f"no checkpoint matching the condition in {timeout} s")


@requires_cifar
@requires_weights
@pytest.mark.slow
def test_smoke_on_two_workers_killed_in_phase_2_and_resumed(tmp_path):
    runs, run = tmp_path / "runs", tmp_path / "runs" / "smoke-mw"
    ports = free_ports(2)

    def worker(i: int, args: list[str], name: str) -> subprocess.Popen:
        env = env_for(tmp_path, tf_config(ports, i))
        env["CIFAR_TEST_WEIGHTS"] = str(tmp_path / f"w{i}.npz")
        return start(args, env, tmp_path / f"{name}{i}.log")

    # One process, same global batch and seed, for the accuracy (runs beside the workers).
    env = env_for(tmp_path)
    env["CIFAR_TEST_WEIGHTS"] = str(tmp_path / "alone.npz")
    alone = start(
        smoke_args("smoke", "--run-dir", str(tmp_path / "alone")), env, tmp_path / "a.log"
    )

    # Worker 1 is told nothing about the run folder: it learns the chief's.
    first = smoke_args("smoke", "--strategy", "multiworker", "--set", f'runs_dir="{runs}"')
    procs = [worker(0, [*first, "--run-dir", str(run)], "first"), worker(1, first, "first")]
    # Kill both once the first fine-tuning epoch is checkpointed (during the second one).
    wait_for_state(
        run / "checkpoint" / "state.json",
        lambda s: s["phase_index"] == 1 and s["phase_epochs_done"] >= 1,
        procs,
    )
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    killed = json.loads((run / "checkpoint" / "state.json").read_text())
    assert killed["phase_index"] == 1 and killed["global_epoch"] == 2, killed
    done_epochs = killed["global_epoch"]
    assert not (run / "metrics.json").exists()
    first_log = (tmp_path / "first1.log").read_text()
    assert "[worker 1/2] cache: off for phase 'frozen': several workers train it" in first_log
    assert f"[worker 1/2] run directory: {run}" in first_log

    # Both resume the chief's run (one machine: they share the filesystem).
    ports[:] = free_ports(2)
    left_by_kill = scratch_folders(tmp_path)  # SIGKILL leaves worker 1 no time to clean up
    resume = ["-m", "cifar.cli", "train", "--resume", str(run)]
    outputs = finish([worker(0, resume, "resumed"), worker(1, resume, "resumed")])
    for out in outputs:
        assert f"at phase 2, epoch {done_epochs + 1}" in out
        assert "have crashed" not in out
        assert _run_epochs(out) == list(range(done_epochs + 1, 4)), out  # no epoch done twice
    assert max_difference(tmp_path / "w0.npz", tmp_path / "w1.npz") == 0.0
    assert sorted(p.name for p in runs.iterdir()) == ["smoke-mw"]  # one run folder
    assert [(r["epoch"], r["phase"]) for r in json.loads((run / "history.json").read_text())] == [
        (1, "frozen"),
        (2, "finetune"),
        (3, "finetune"),
    ]
    for name in ("config.json", "metrics.json", "best_model.keras", "REPORT.md", "labels.txt"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").rglob("events.out.tfevents*"))
    assert scratch_folders(tmp_path) == left_by_kill  # the resumed worker 1 removed its own
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["phases"][0]["cache"] == "off"

    # The one-process run: the same accuracy within 2 points.
    (alone_out,) = finish([alone])
    single = json.loads((tmp_path / "alone" / "metrics.json").read_text())
    assert abs(metrics["test"]["accuracy"] - single["test"]["accuracy"]) <= 0.02, alone_out[-2000:]


def _run_epochs(output: str) -> list[int]:
    """The global epoch numbers of the progress lines in ``output``."""
    marker = "(run epoch "
    return [
        int(line.split(marker)[1].split(")")[0]) for line in output.splitlines() if marker in line
    ]
