"""In-network aggregation for training jobs.

Join a job on an aggregating switch (switch-emu, or a Tofino running the
project's P4 program) and sum NumPy arrays across its workers in place::

    import numpy as np
    import ina_agent

    with ina_agent.Agent("my-job", rank, world) as agent:
        grads = np.ones(1_000_000, dtype=np.float32)
        agent.allreduce(grads)                 # blocking, in place
        agent.allreduce(grads, out=summed)     # or into a second array (no copy kept)
        work = agent.allreduce_async(grads)    # or overlap with computation
        ...
        work.wait()

float32 sums use block fixed point: bit-identical on every worker and
within ``float32_error_bound`` of the exact sum; int32 sums wrap. For
PyTorch, ``ina_agent.ddp`` has a DistributedDataParallel communication hook.
"""

from ._native import (
    DEFAULT_CONTROL,
    Agent,
    AgentEnded,
    InaError,
    JobFailed,
    JoinRejected,
    JoinTimeout,
    NonFiniteError,
    PeerTimeout,
    SwitchUnreachable,
    Work,
    __version__,
    float32_error_bound,
)

__all__ = [
    "DEFAULT_CONTROL",
    "Agent",
    "AgentEnded",
    "InaError",
    "JobFailed",
    "JoinRejected",
    "JoinTimeout",
    "NonFiniteError",
    "PeerTimeout",
    "SwitchUnreachable",
    "Work",
    "__version__",
    "float32_error_bound",
]
