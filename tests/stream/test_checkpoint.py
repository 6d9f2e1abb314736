"""Checkpoints: atomic, loaded with weights_only, refused when corrupt or foreign; a daemon restart."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
import torch

from driftcal.stream import state
from driftcal.stream.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from driftcal.stream.daemon import Daemon
from driftcal.stream.memory import MemoryBroker, MemorySink, MemorySource

from .test_daemon import N_REF, SHAPE, TRUTH, Feed, _documents, _gamma, _settings, _until

OWNER = {"detector": "t", "module": "0", "model": "cell-gain", "shape": [2, 4, 4]}


def test_save_is_atomic_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"x": torch.arange(3), "n": 1}, owner=OWNER)
    save_checkpoint(path, {"x": torch.arange(4), "n": 2}, owner=OWNER)
    assert load_checkpoint(path, owner=OWNER)["n"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "corrupt"), (b"garbage" * 10, "corrupt"), (None, "missing")],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path: Path, content: bytes | None, reason: str) -> None:
    path = tmp_path / "ck.pt"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, owner=OWNER)
    assert err.value.reason == reason


def test_a_pickled_object_is_refused_not_executed(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self) -> tuple:
            return (print, ("executed!",))

    path = tmp_path / "ck.pt"
    torch.save({"format": "driftcal.checkpoint/1", "owner": OWNER, "state": {"x": Evil()}}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path, owner=OWNER)
    assert err.value.reason == "corrupt"


def test_truncated_checkpoint_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"x": torch.ones(1000)}, owner=OWNER)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(path, owner=OWNER)


@pytest.mark.asyncio
async def test_restart_continues_from_the_checkpoint(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    path = tmp_path / "daemon.pt"
    s = _settings(checkpoint={"path": str(path)})
    k = s.kafka
    rng = np.random.default_rng(5)
    broker = MemoryBroker()
    feed = Feed(broker, k.input_topic)
    feed.events(_gamma(rng, N_REF))
    feed.events((_gamma(rng, 1500) * TRUTH).astype(np.float32))
    first = Daemon(s, events=MemorySource(broker, [k.input_topic], group_id="g"), sink=MemorySink(broker))
    task = asyncio.create_task(first.run())
    await _until(lambda: first.updates >= 1, task)
    first.request_stop()
    await task
    assert path.is_file()
    coefficients, sequence = first.coefficients(), first.policy.sequence

    # a second instance: same group, same checkpoint; new events arrive
    feed.events((_gamma(rng, 600) * TRUTH).astype(np.float32))
    second = Daemon(s, events=MemorySource(broker, [k.input_topic], group_id="g"), sink=MemorySink(broker))
    task = asyncio.create_task(second.run())
    await _until(lambda: second.updates >= first.updates + 1, task)
    second.request_stop()
    await task
    docs = _documents(broker, k.output_topic)
    assert [d.sequence for d in docs] == list(range(1, len(docs) + 1))  # no restart at 1, no gap
    assert docs[sequence].sequence == sequence + 1
    # it continued from the saved coefficients: the first update after the restart moved them only a little
    assert float(np.max(np.abs(docs[sequence].array() - coefficients))) < 0.05
    assert second.reservoir.seen == N_REF  # the reference came back; the new events went to the window
    assert second.window.total == 1500 + 600


@pytest.mark.asyncio
async def test_a_foreign_checkpoint_means_a_cold_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "daemon.pt"
    save_checkpoint(path, {"x": torch.ones(1)}, owner={**OWNER, "shape": [9]})
    s = _settings(checkpoint={"path": str(path)})
    broker = MemoryBroker()
    source = MemorySource(broker, [s.kafka.input_topic], group_id="g")
    daemon = Daemon(s, events=source, sink=MemorySink(broker))

    assert state.load_into(daemon) is False
    assert "checkpoint refused, starting cold" in caplog.text
    assert daemon.updates == 0 and np.all(daemon.coefficients() == 1.0)
    assert tuple(daemon.window.event_shape) == SHAPE


@pytest.mark.asyncio
async def test_transactional_sink_commits_offsets_with_the_documents() -> None:
    torch.set_num_threads(1)
    s = _settings()
    k = s.kafka
    rng = np.random.default_rng(6)
    broker = MemoryBroker()
    feed = Feed(broker, k.input_topic)
    feed.events(_gamma(rng, N_REF))
    feed.raw(b"bad")
    feed.events((_gamma(rng, 800) * TRUTH).astype(np.float32))
    source = MemorySource(broker, [k.input_topic], group_id="g")
    daemon = Daemon(s, events=source, sink=MemorySink(broker, group_id="g"), dlq=MemorySink(broker))
    task = asyncio.create_task(daemon.run())
    await _until(lambda: daemon.updates >= 1, task)
    daemon.request_stop()
    await task
    assert broker.committed == {("g", (k.input_topic, 0)): feed.messages}
    assert [r.value for r in broker.messages(k.dlq_topic)] == [b"bad"]
    sequences = [d.sequence for d in _documents(broker, k.output_topic)]
    assert sequences == list(range(1, daemon.policy.sequence + 1))
