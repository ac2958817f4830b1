#!/usr/bin/env python3
"""Data-parallel training of a small MLP on scikit-learn's digits, with the
gradients summed by the switch, next to the same training on Gloo.

Run it with a switch on loopback (``switch-emu serve`` in another terminal)::

    python python/examples/train_digits.py                 # 4 workers, both backends
    python python/examples/train_digits.py --backend ina --control 127.0.0.1:48865

Without RANK in the environment the script is the launcher: it starts the
workers as local processes, once per backend, and compares the runs. With
RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT set (as torchrun sets them)
it is one worker.

Both backends use the same seed, model initialization, data shards and
order, so their losses differ only by the arithmetic of the gradient sums.
Every rank ends with the same parameters; the launcher checks their hashes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import subprocess
import sys
import time

RESULT_PREFIX = "RESULT "


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=["ina", "gloo", "both"], default="both",
                   help="sum gradients in the switch (ina), with Gloo, or run both and compare (default)")
    p.add_argument("--workers", type=int, default=4, help="worker processes (default 4)")
    p.add_argument("--epochs", type=int, default=10, help="passes over the training set (default 10)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per worker per step (default 32)")
    p.add_argument("--lr", type=float, default=0.05, help="SGD learning rate (default 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of data split, order and initialization")
    p.add_argument("--control", default=None,
                   help="the switch's control plane, host:port (default ina_agent.DEFAULT_CONTROL)")
    p.add_argument("--job", default=None, help="job name on the switch (default: unique per run)")
    p.add_argument("--max-loss-difference", type=float, default=0.02,
                   help="with --backend both: largest relative difference of the final losses "
                        "before the launcher exits with an error (default 0.02)")
    return p.parse_args(argv)


# ---------------------------------------------------------------- worker

def load_data(seed: int, rank: int, world: int):
    import numpy as np
    import torch
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32)
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(x))
    n_train = int(0.8 * len(x))
    train, test = order[:n_train], order[n_train:]
    # Equal shards (the remainder is dropped): every rank must take the same
    # number of steps, or the allreduces of the ranks would not pair up.
    per_rank = len(train) // world
    shard = train[rank * per_rank:(rank + 1) * per_rank]
    as_tensors = lambda idx: (torch.from_numpy(x[idx]), torch.from_numpy(y[idx]))  # noqa: E731
    return as_tensors(shard), as_tensors(test)


def make_model(seed: int):
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(64, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )


def parameter_digest(model) -> str:
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().contiguous().numpy().tobytes())
    return h.hexdigest()


def worker(args: argparse.Namespace) -> None:
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    torch.set_num_threads(1)  # several workers share this machine's cores
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    backend = os.environ.get("INA_BACKEND", args.backend)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    (x, y), (x_test, y_test) = load_data(args.seed, rank, world)
    model = DDP(make_model(args.seed))
    agent = state = None
    if backend == "ina":
        import ina_agent
        from ina_agent.ddp import register

        job = args.job or os.environ.get("INA_JOB") or f"digits-{os.environ['MASTER_PORT']}"
        agent = ina_agent.Agent(job, rank, world, control=args.control or ina_agent.DEFAULT_CONTROL)
        state = register(model, agent)
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()
    losses = []
    started = time.monotonic()
    for epoch in range(args.epochs):
        # The same shuffle on every rank (like DistributedSampler with a seed).
        g = torch.Generator().manual_seed(args.seed * 1000 + epoch)
        perm = torch.randperm(len(x), generator=g)
        total = torch.zeros(2, dtype=torch.float64)
        for i in range(0, len(x) - args.batch_size + 1, args.batch_size):
            idx = perm[i:i + args.batch_size]
            optimizer.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item() * len(idx), len(idx)], dtype=torch.float64)
        # Monitoring only: the mean loss over all ranks, through the process group.
        dist.all_reduce(total)
        losses.append(float(total[0] / total[1]))
        if rank == 0:
            print(f"[{backend}] epoch {epoch + 1:2d}  loss {losses[-1]:.5f}", flush=True)
    seconds = time.monotonic() - started
    with torch.no_grad():
        accuracy = float((model(x_test).argmax(1) == y_test).float().mean())
    digests = [None] * world
    dist.all_gather_object(digests, parameter_digest(model))
    stats = None
    if agent is not None:
        state.close()
        stats = agent.leave()
    if rank == 0:
        result = {
            "backend": backend, "world": world, "losses": losses, "final_loss": losses[-1],
            "accuracy": accuracy, "seconds": seconds, "digests": digests,
            "identical_parameters": len(set(digests)) == 1,
            "switch_buckets": state.switch_buckets if state else 0,
            "fallback_buckets": state.fallback_buckets if state else 0,
            "agent_stats": stats,
        }
        print(RESULT_PREFIX + json.dumps(result), flush=True)
    dist.destroy_process_group()


# -------------------------------------------------------------- launcher

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(args: argparse.Namespace, backend: str) -> dict:
    port = free_port()
    procs = []
    for rank in range(args.workers):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(args.workers),
                   MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), INA_BACKEND=backend,
                   INA_JOB=args.job or f"digits-{os.getpid()}-{port}")
        procs.append(subprocess.Popen([sys.executable, __file__, *sys.argv[1:]], env=env,
                                      stdout=subprocess.PIPE if rank == 0 else None, text=True))
    result = None
    for line in procs[0].stdout:
        if line.startswith(RESULT_PREFIX):
            result = json.loads(line[len(RESULT_PREFIX):])
        else:
            print(line, end="", flush=True)
    codes = [p.wait() for p in procs]
    if any(codes) or result is None:
        raise SystemExit(f"{backend} workers failed (exit codes {codes})")
    return result


def report(r: dict) -> None:
    print(f"[{r['backend']}] final loss {r['final_loss']:.5f}, test accuracy {r['accuracy']:.4f}, "
          f"{r['seconds']:.2f} s of training, parameters identical on all {r['world']} ranks: "
          f"{'yes' if r['identical_parameters'] else 'NO'} (sha256 {r['digests'][0][:16]}...)")
    if r["backend"] == "ina":
        s = r["agent_stats"]
        print(f"[ina] buckets through the switch {r['switch_buckets']}, through the process group "
              f"{r['fallback_buckets']}; rank 0 sent {s['packets_sent']} packets "
              f"({s['retransmissions']} retransmissions)")


def main() -> None:
    args = parse_args()
    if "RANK" in os.environ:
        worker(args)
        return
    backends = ["gloo", "ina"] if args.backend == "both" else [args.backend]
    results = {b: launch(args, b) for b in backends}
    for r in results.values():
        report(r)
    failed = [b for b, r in results.items() if not r["identical_parameters"]]
    if len(results) == 2:
        g, i = results["gloo"]["final_loss"], results["ina"]["final_loss"]
        difference = abs(i - g) / g
        print(f"final loss: gloo {g:.5f}, ina {i:.5f}, relative difference {difference:.4%} "
              f"(limit {args.max_loss_difference:.2%})")
        if difference > args.max_loss_difference:
            failed.append("loss difference")
    print("SUMMARY " + json.dumps({b: {k: r[k] for k in ("final_loss", "accuracy", "identical_parameters", "seconds")}
                                   for b, r in results.items()}))
    if failed:
        raise SystemExit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
