#!/usr/bin/env python3
"""The DDP communication hook of ina_agent.ddp on several worker processes
against a running switch, in lockstep with a plain DDP model (Gloo):

- float32 buckets go through the switch, float64 buckets through the
  process group, and the fallback is logged once however many buckets take it;
- after every step the parameters equal the plain model's (the float64
  layer exactly after the first step, the rest within the fixed-point
  error) and are identical on every rank;
- a NaN gradient makes backward() raise the agent's message.

    python python/tests/ddp_hook.py --control 127.0.0.1:48865 [--workers 4]

Prints "ddp hook: ok" and exits 0 when every check holds.
Driven by tests/tests/python.rs against a switch-emu of its own.
"""

import argparse
import copy
import gc
import hashlib
import logging
import os
import socket
import sys
import traceback

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel as DDP

import ina_agent
from ina_agent.ddp import register

STEPS = 6


class Mixed(torch.nn.Module):
    """A float32 layer and a float64 layer: DDP makes one bucket per dtype."""

    def __init__(self):
        super().__init__()
        self.layer32 = torch.nn.Linear(32, 48)
        self.layer64 = torch.nn.Linear(48, 4).double()

    def forward(self, x):
        return self.layer64(torch.relu(self.layer32(x)).double()).float()


class Count(logging.Handler):
    def __init__(self):
        super().__init__()
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def digest(model) -> str:
    h = hashlib.sha256()
    for p in model.parameters():
        h.update(p.detach().numpy().tobytes())
    return h.hexdigest()


def worker(rank, world, port, control, job, errors):
    try:
        torch.set_num_threads(1)
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
        log = Count()
        logging.getLogger("ina_agent").addHandler(log)
        torch.manual_seed(0)
        net = Mixed()
        plain = DDP(copy.deepcopy(net))
        hooked = DDP(net)
        agent = ina_agent.Agent(job, rank, world, control=control, join_timeout=60)
        state = register(hooked, agent)
        opt_plain = torch.optim.SGD(plain.parameters(), lr=0.1)
        opt_hooked = torch.optim.SGD(hooked.parameters(), lr=0.1)
        gen = torch.Generator().manual_seed(100 + rank)  # different data per rank
        for step in range(STEPS):
            x, y = torch.randn(16, 32, generator=gen), torch.randn(16, 4, generator=gen)
            for model, opt in ((plain, opt_plain), (hooked, opt_hooked)):
                opt.zero_grad()
                torch.nn.functional.mse_loss(model(x), y).backward()
                opt.step()
            for (name, a), b in zip(plain.named_parameters(), hooked.parameters()):
                if a.dtype == torch.float64 and step == 0:
                    # Same inputs, same Gloo path: equal. (Later steps see
                    # float32 layers that carry the fixed-point rounding.)
                    assert torch.equal(a, b), f"step {step}: {name} differs from Gloo"
                else:
                    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), (
                        f"step {step}: {name} off by {(a - b).abs().max():.3g}")
        digests = [None] * world
        dist.all_gather_object(digests, digest(hooked))
        assert len(set(digests)) == 1, f"parameters differ between ranks: {digests}"
        assert state.switch_buckets >= STEPS and state.fallback_buckets >= STEPS, (
            state.switch_buckets, state.fallback_buckets)
        fallbacks = [m for m in log.messages if "process group" in m]
        assert len(fallbacks) == 1 and "float64" in fallbacks[0], log.messages
        assert agent.stats()["allreduces"] == state.switch_buckets

        # A NaN gradient on every rank: backward() raises the agent's error.
        x = torch.randn(16, 32, generator=gen)
        x[0, 0] = float("nan")
        opt_hooked.zero_grad()
        try:
            hooked(x).sum().backward()
            raise AssertionError("a NaN gradient went through")
        except RuntimeError as e:
            assert "non-finite value" in str(e), e
        # backward() raised on the float32 bucket while the float64 one may
        # still be in Gloo's queue; Gloo's barrier waits for the work queued
        # before it, so none is left running when the group is destroyed
        # (a CI run once aborted at exit with "terminate called without an
        # active exception" after every check here had passed).
        dist.barrier()
        # A reducer whose bucket failed must go before its process group:
        # torch aborts the process at exit otherwise (see ina_agent.ddp).
        del hooked, opt_hooked
        gc.collect()
        state.close()
        agent.leave()
        dist.destroy_process_group()
    except BaseException:
        errors.put((rank, traceback.format_exc()))
        raise


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--control", default=ina_agent.DEFAULT_CONTROL)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    errors = mp.get_context("spawn").SimpleQueue()
    try:
        mp.spawn(worker, args=(args.workers, port, args.control, f"ddp-{os.getpid()}", errors),
                 nprocs=args.workers)
    except Exception as e:
        while not errors.empty():
            rank, trace = errors.get()
            print(f"rank {rank} failed:\n{trace}", file=sys.stderr)
        print(f"ddp hook: FAILED ({e.__class__.__name__})", file=sys.stderr)
        return 1
    print(f"ddp hook: ok ({STEPS} steps on {args.workers} workers, float64 through Gloo, logged once)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
