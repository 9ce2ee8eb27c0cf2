"""StreamReader: the upload's chunks as the MinIO SDK's thread reads them."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import pytest

from interlock.artifact.storage import StreamReader


class _TooLarge(Exception):
    pass


class _Chunks:
    """An upload arriving in small chunks; notes how often, and from which task, the
    reader asks for one (each crossing from the SDK's thread is a task of its own)."""

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = list(chunks)
        self.asked = 0
        self.tasks: set[asyncio.Task[object] | None] = set()

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        self.asked += 1
        self.tasks.add(asyncio.current_task())
        if not self._chunks:
            raise StopAsyncIteration
        return self._chunks.pop(0)


def _reader(chunks: _Chunks, *, limit: int = 1 << 30) -> StreamReader:
    return StreamReader(
        chunks, asyncio.get_running_loop(), limit=limit, on_too_large=lambda size: _TooLarge(size)
    )


async def test_reads_return_what_is_asked_and_hash_every_byte() -> None:
    data = bytes(range(256)) * 40  # 10,240 bytes in 40 chunks of 256
    reader = _reader(_Chunks([data[i : i + 256] for i in range(0, len(data), 256)]))

    first = await asyncio.to_thread(reader.read, 1000)
    second = await asyncio.to_thread(reader.read, 5000)
    rest = await asyncio.to_thread(reader.read)
    end = await asyncio.to_thread(reader.read, 10)

    assert (len(first), len(second)) == (1000, 5000)
    assert first + second + rest == data
    assert end == b""
    assert reader.size_bytes == len(data)
    assert reader.digest.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_one_read_crosses_to_the_event_loop_once_for_all_its_chunks() -> None:
    chunks = _Chunks([b"x" * 100] * 10)
    reader = _reader(chunks)

    part = await asyncio.to_thread(reader.read, 950)

    assert len(part) == 950
    assert chunks.asked == 10  # ten chunks, not one more: the last 50 bytes wait in the buffer
    assert len(chunks.tasks) == 1
    assert await asyncio.to_thread(reader.read, 50) == b"x" * 50
    assert chunks.asked == 10


async def test_beyond_the_limit_the_read_fails_with_the_count() -> None:
    reader = _reader(_Chunks([b"y" * 100] * 5), limit=250)

    with pytest.raises(_TooLarge) as raised:
        await asyncio.to_thread(reader.read, 1000)

    assert raised.value.args == (300,)
