#!/usr/bin/env python3
"""The NumPy API of ina_agent with several worker processes against a
running switch: exact int32 sums (wrapping), float32 sums within the
documented bound and bit-identical on every rank, in place and into a
second array (`out=`), asynchronous work, the read-only guard, statistics,
and errors as Python exceptions.

    python python/tests/numpy_allreduce.py --control 127.0.0.1:48865 [--workers 4]

Exits with status 0 and prints "numpy api: ok" when every check holds.
Driven by tests/tests/python.rs against a switch-emu of its own.
"""

import argparse
import hashlib
import multiprocessing as mp
import os
import sys
import traceback

import numpy as np

import ina_agent

# (name, dtype, shape): lengths around the packet size (64) and the window,
# a multi-dimensional array, an empty one and a large one.
CASES = [
    ("one element", np.int32, (1,)),
    ("63", np.int32, (63,)),
    ("64", np.int32, (64,)),
    ("65", np.int32, (65,)),
    ("2-D", np.int32, (37, 129)),
    ("empty", np.int32, (0,)),
    ("1 Mi", np.int32, (1 << 20,)),
    ("one element", np.float32, (1,)),
    ("65", np.float32, (65,)),
    ("2-D", np.float32, (129, 37)),
    ("mixed scales", np.float32, (70_000,)),
    ("1 Mi", np.float32, (1 << 20,)),
]


def inputs(case: int, rank: int):
    """Rank `rank`'s input for case `case`; every process can rebuild any rank's."""
    _, dtype, shape = CASES[case]
    rng = np.random.default_rng(1000 * case + rank)
    if dtype == np.int32:
        # Large magnitudes so that sums wrap around.
        return rng.integers(-(2**31), 2**31, size=shape, dtype=np.int64).astype(np.int32)
    x = rng.standard_normal(size=shape).astype(np.float32)
    if CASES[case][0] == "mixed scales":
        x *= np.float32(10.0) ** rng.integers(-6, 6, size=shape).astype(np.float32)
    return x


def check_case(case: int, result, world: int) -> None:
    name, dtype, shape = CASES[case]
    assert result.shape == shape and result.dtype == dtype, (result.shape, result.dtype)
    all_inputs = [inputs(case, r) for r in range(world)]
    if dtype == np.int32:
        expected = np.zeros(shape, dtype=np.int64)
        for x in all_inputs:
            expected += x
        expected = expected.astype(np.int32)  # two's complement wrap, as the switch adds
        assert np.array_equal(result, expected), f"int32 {name}: sums differ"
        return
    exact = np.zeros(shape, dtype=np.float64)
    for x in all_inputs:
        exact += x.astype(np.float64)
    if result.size == 0:
        return
    # The bound holds per packet block with the block's max exponent; the
    # array's max magnitude over every rank bounds every block's.
    max_abs = max(float(np.abs(x).max()) for x in all_inputs)
    absolute = ina_agent.float32_error_bound(world, max_abs)
    bound = absolute + np.abs(exact) * 2.0**-23 + 2.0**-150
    error = np.abs(result.astype(np.float64) - exact)
    worst = int(np.argmax(error - bound))
    assert np.all(error <= bound), (
        f"float32 {name}: error {error.flat[worst]:.3g} above bound {bound.flat[worst]:.3g} at {worst}")


def worker(control: str, job: str, rank: int, world: int, out) -> None:
    try:
        digests = {}
        agent = ina_agent.Agent(job, rank, world, control=control, join_timeout=60)
        assert (agent.rank, agent.world, agent.job) == (rank, world, job)
        assert agent.params["world"] == world

        # Blocking, in place: the array object itself holds the result.
        for case in range(len(CASES)):
            array = inputs(case, rank)
            before = array.__array_interface__["data"][0]
            agent.allreduce(array)
            assert array.__array_interface__["data"][0] == before, "the array was replaced"
            check_case(case, array, world)
            digests[f"blocking {case}"] = hashlib.sha256(array.tobytes()).hexdigest()

        # Out of place: the sum goes to `out`, bit for bit the in-place sum,
        # and the input is left as it was.
        for case in (2, 8, 10):
            x = inputs(case, rank)
            y = np.full_like(x, 3)
            agent.allreduce(x, out=y)
            assert np.array_equal(x, inputs(case, rank)), "the input changed"
            assert x.flags.writeable and y.flags.writeable
            check_case(case, y, world)
            assert hashlib.sha256(y.tobytes()).hexdigest() == digests[f"blocking {case}"]
        x, y = inputs(11, rank), np.empty_like(inputs(11, rank))
        work = agent.allreduce_async(x, out=y)
        for pending in (x, y):
            try:
                pending[0] = 1
                raise AssertionError("an array of a pending out-of-place allreduce accepted a write")
            except ValueError:
                pass
        work.wait()
        assert x.flags.writeable and y.flags.writeable
        assert np.array_equal(x, inputs(11, rank))
        check_case(11, y, world)
        # out=array is in place.
        same = inputs(4, rank)
        agent.allreduce(same, out=same)
        check_case(4, same, world)

        # Asynchronous: two in flight, read-only until waited, then writeable.
        a, b = inputs(10, rank), inputs(6, rank)
        work_a, work_b = agent.allreduce_async(a), agent.allreduce_async(b)
        try:
            a[0] = 1.0
            raise AssertionError("a pending array accepted a write")
        except ValueError:
            pass
        try:
            agent.allreduce_async(a)
            raise AssertionError("a pending array was submitted twice")
        except ValueError as e:
            assert "read-only" in str(e), e
        work_b.wait(timeout=120)
        work_a.wait()
        assert work_a.is_completed() and work_b.is_completed()
        assert a.flags.writeable and b.flags.writeable
        check_case(10, a, world)
        check_case(6, b, world)
        digests["async float"] = hashlib.sha256(a.tobytes()).hexdigest()

        # A view into a larger array is reduced in place, the rest untouched.
        big = np.full(300, 7, dtype=np.int32)
        view = big[100:200]
        agent.allreduce(view)
        assert np.all(big[:100] == 7) and np.all(big[200:] == 7)
        assert np.all(view == 7 * world), view[:4]

        # Refusals, locally, before anything is sent (so the ranks stay in step).
        for bad, kind in [(np.zeros(8, dtype=np.float64), TypeError),
                          (np.zeros(16, dtype=np.int32)[::2], ValueError),
                          ([1.0, 2.0], TypeError)]:
            try:
                agent.allreduce(bad)
                raise AssertionError(f"{bad!r} accepted")
            except kind:
                pass
        # Out of place, refused alike: overlapping memory, another dtype or size.
        shared = np.zeros(100, dtype=np.int32)
        for array, bad_out, kind, words in [
                (shared[:60], shared[40:], ValueError, "shares memory"),
                (np.zeros(8, dtype=np.float32), np.zeros(8, dtype=np.int32), TypeError, "dtype"),
                (np.zeros(8, dtype=np.int32), np.zeros(9, dtype=np.int32), ValueError, "9 elements"),
                (np.zeros(8, dtype=np.float32), [0.0] * 8, TypeError, "numpy.ndarray")]:
            try:
                agent.allreduce(array, out=bad_out)
                raise AssertionError(f"out={bad_out!r} accepted")
            except kind as e:
                assert words in str(e), e
            assert array.flags.writeable
        assert shared.flags.writeable and shared[:60].flags.writeable
        frozen = np.zeros(8, dtype=np.float32)
        frozen.flags.writeable = False
        try:
            agent.allreduce(frozen)
            raise AssertionError("a read-only array accepted")
        except ValueError:
            pass
        # NaN on every rank: refused, nothing sent, and the agent stays usable.
        nan = np.ones(100, dtype=np.float32)
        nan[42] = np.nan
        try:
            agent.allreduce(nan)
            raise AssertionError("NaN accepted")
        except ina_agent.NonFiniteError as e:
            assert "index 42" in str(e), e
            assert isinstance(e, ina_agent.InaError)
        assert nan.flags.writeable, "the refused array stayed read-only"
        ok = np.ones(100, dtype=np.float32)
        agent.allreduce(ok)
        assert np.all(ok == world)

        stats = agent.stats()
        # Every allreduce counted: the cases, three out of place, one async out
        # of place, out=array, two async, the view, the last one.
        assert stats["allreduces"] == len(CASES) + 9, stats
        assert stats["packets_sent"] > 0 and stats["results_received"] > 0, stats
        final = agent.leave()
        assert final["allreduces"] == stats["allreduces"]
        try:
            agent.allreduce(np.zeros(4, dtype=np.int32))
            raise AssertionError("allreduce after leave")
        except ina_agent.AgentEnded as e:
            assert "left" in str(e), e
        out.put((rank, "ok", digests))
    except BaseException:
        out.put((rank, "error", traceback.format_exc()))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--control", default=ina_agent.DEFAULT_CONTROL)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()

    # Errors carry the Rust message: nothing listens on port 1.
    try:
        ina_agent.Agent("nobody", 0, 1, control="127.0.0.1:1", connect_timeout=2)
        raise AssertionError("joined a switch that does not exist")
    except ina_agent.SwitchUnreachable as e:
        assert "switch unreachable at 127.0.0.1:1" in str(e), e
    try:
        ina_agent.Agent("bad", 0, 2, control=args.control, join_timeout=-1)
        raise AssertionError("negative timeout accepted")
    except ValueError as e:
        assert "join_timeout" in str(e), e

    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    job = f"numpy-{os.getpid()}"
    procs = [ctx.Process(target=worker, args=(args.control, job, r, args.workers, out))
             for r in range(args.workers)]
    for proc in procs:
        proc.start()
    reports = {}
    for _ in procs:
        rank, status, detail = out.get(timeout=600)
        reports[rank] = (status, detail)
    for proc in procs:
        proc.join(timeout=60)
    failed = {r: d for r, (s, d) in reports.items() if s != "ok"}
    for rank, trace in sorted(failed.items()):
        print(f"rank {rank} failed:\n{trace}", file=sys.stderr)
    if failed:
        return 1
    digests = [reports[r][1] for r in range(args.workers)]
    differing = [k for k in digests[0] if len({d[k] for d in digests}) != 1]
    if differing:
        print(f"results differ between ranks: {differing}", file=sys.stderr)
        return 1
    print(f"numpy api: ok ({len(CASES)} cases on {args.workers} workers, results bit-identical)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
