"""A PyTorch DistributedDataParallel communication hook that sums gradient
buckets in the switch.

Use it with the stock ``torch`` package (CPU)::

    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP
    import ina_agent
    from ina_agent.ddp import InaHookState, allreduce_hook

    dist.init_process_group("gloo", ...)          # DDP still needs a process group
    agent = ina_agent.Agent("job", dist.get_rank(), dist.get_world_size())
    model = DDP(net)
    state = InaHookState(agent)
    model.register_comm_hook(state, allreduce_hook)

float32 and int32 buckets on the CPU go through the agent; any other bucket
(float64, float16, bfloat16, or on a GPU) goes through the process group's
own allreduce, and the first such bucket of each kind is logged once on the
``ina_agent`` logger. Either way the hook averages, as DDP's default does.

An agent error (a NaN gradient, a peer that died) fails the bucket's
future, and ``backward()`` raises it. After such an error, delete the DDP
model before ``dist.destroy_process_group()``: torch (seen with 2.15)
aborts the process at exit when a reducer with a failed bucket outlives
its process group.
"""

import logging
import queue
import threading
from typing import Optional, Set, Tuple

import torch
import torch.distributed as dist

from ._native import Agent

__all__ = ["InaHookState", "allreduce_hook", "register"]

log = logging.getLogger("ina_agent")

# Bucket dtypes the switch sums (block fixed point for float32, wrapping int32).
_SWITCH_DTYPES = (torch.float32, torch.int32)


class InaHookState:
    """What ``allreduce_hook`` needs: the agent, the process group for the
    buckets the switch does not take, and a thread that completes the
    hook's futures as the agent finishes each bucket.

    Counters: ``switch_buckets`` and ``fallback_buckets``.
    """

    def __init__(self, agent: Agent, process_group: Optional[dist.ProcessGroup] = None):
        self.agent = agent
        self.process_group = process_group
        group_size = dist.get_world_size(process_group)
        if group_size != agent.world:
            raise ValueError(
                f"the agent's job has {agent.world} workers but the process group has {group_size}"
            )
        self.world = agent.world
        self.switch_buckets = 0
        self.fallback_buckets = 0
        self._fallback_logged: Set[Tuple[torch.dtype, str]] = set()
        # The agent runs allreduces in submission order, so one thread
        # waiting on them in that order completes each future as early as possible.
        self._pending: queue.SimpleQueue = queue.SimpleQueue()
        self._completer = threading.Thread(
            target=self._complete, name="ina-ddp-completer", daemon=True
        )
        self._completer.start()

    def _complete(self) -> None:
        while True:
            item = self._pending.get()
            if item is None:
                return
            work, future, tensor = item
            try:
                work.wait()
            except BaseException as error:  # handed to DDP, which raises it in backward()
                future.set_exception(error)
            else:
                future.set_result(tensor)

    def _note_fallback(self, tensor: torch.Tensor) -> None:
        self.fallback_buckets += 1
        kind = (tensor.dtype, tensor.device.type)
        if kind not in self._fallback_logged:
            self._fallback_logged.add(kind)
            log.warning(
                "ina_agent: %s buckets on %s go through the process group's allreduce "
                "(the switch sums float32 and int32 CPU tensors); said once",
                tensor.dtype,
                tensor.device,
            )

    def close(self) -> None:
        """Stops the completion thread (after the futures already submitted)."""
        if self._completer.is_alive():
            self._pending.put(None)
            self._completer.join()

    def __getstate__(self):
        raise TypeError("InaHookState holds a live agent and cannot be pickled")


def _average(tensor: torch.Tensor, world: int) -> torch.Tensor:
    if tensor.is_floating_point():
        return tensor.div_(world)
    return tensor.div_(world, rounding_mode="trunc")


# No `from __future__ import annotations` here: DDP checks this signature
# against the real dist.GradBucket and torch.futures.Future types.
def allreduce_hook(
    state: InaHookState, bucket: dist.GradBucket
) -> torch.futures.Future[torch.Tensor]:
    """Averages one gradient bucket over the workers (see the module docs)."""
    tensor = bucket.buffer()
    world = state.world
    if (
        tensor.dtype in _SWITCH_DTYPES
        and tensor.device.type == "cpu"
        and tensor.is_contiguous()
    ):
        # The numpy view shares the bucket's memory: the agent sums in place.
        work = state.agent.allreduce_async(tensor.detach().numpy())
        state.switch_buckets += 1
        future: torch.futures.Future = torch.futures.Future()
        state._pending.put((work, future, tensor))
        return future.then(lambda f: _average(f.value(), world))
    state._note_fallback(tensor)
    group = state.process_group if state.process_group is not None else dist.group.WORLD
    future = dist.all_reduce(tensor, group=group, async_op=True).get_future()
    return future.then(lambda f: _average(f.value()[0], world))


def register(
    model: torch.nn.parallel.DistributedDataParallel,
    agent: Agent,
    process_group: Optional[dist.ProcessGroup] = None,
) -> InaHookState:
    """Registers ``allreduce_hook`` on ``model`` and returns its state."""
    state = InaHookState(agent, process_group)
    model.register_comm_hook(state, allreduce_hook)
    return state
