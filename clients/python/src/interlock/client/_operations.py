"""Operations written once, served by the sync and the async client alike.

A resource method decorated with :func:`operation` returns the :class:`Call` it
needs; read through a ``Resource[Sync]`` it sends it and returns the answer, through a
``Resource[Async]`` it returns an awaitable of the answer. :func:`paged` does the same
for lists (an iterator or an async iterator of every item) and :func:`streamed` for
server-sent event streams.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from interlock.client._calls import Call, EventStream, PagedCall

P = ParamSpec("P")
T = TypeVar("T")
Mode = TypeVar("Mode")


class Sync:
    """Marks a resource of the blocking client."""


class Async:
    """Marks a resource of the asyncio client."""


class Resource(Generic[Mode]):
    """A family of operations (workflows, runs, ...) bound to a client's transport."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport


class _Descriptor(Generic[P, T]):
    _method = "send"

    def __init__(self, build: Callable[Concatenate[Any, P], Any]) -> None:
        self._build = build
        functools.update_wrapper(self, build)  # type: ignore[arg-type]

    def _bind(self, resource: Resource[Any]) -> Callable[P, Any]:
        build, method = self._build, getattr(resource._transport, self._method)

        @functools.wraps(build)
        def bound(*args: P.args, **kwargs: P.kwargs) -> Any:
            return method(build(resource, *args, **kwargs))

        return bound


class Operation(_Descriptor[P, T]):
    """One request, answered by one value."""

    @overload
    def __get__(self, resource: None, owner: type) -> Operation[P, T]: ...
    @overload
    def __get__(self, resource: Resource[Sync], owner: type) -> Callable[P, T]: ...
    @overload
    def __get__(self, resource: Resource[Async], owner: type) -> Callable[P, Awaitable[T]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return self if resource is None else self._bind(resource)


class Paged(_Descriptor[P, T]):
    """A list, read page by page as its items are used."""

    _method = "pages"

    @overload
    def __get__(self, resource: None, owner: type) -> Paged[P, T]: ...
    @overload
    def __get__(self, resource: Resource[Sync], owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, resource: Resource[Async], owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return self if resource is None else self._bind(resource)


class Streamed(_Descriptor[P, T]):
    """A server-sent event stream, resumed after a break."""

    _method = "events"

    @overload
    def __get__(self, resource: None, owner: type) -> Streamed[P, T]: ...
    @overload
    def __get__(self, resource: Resource[Sync], owner: type) -> Callable[P, Iterator[T]]: ...
    @overload
    def __get__(self, resource: Resource[Async], owner: type) -> Callable[P, AsyncIterator[T]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type) -> Any:
        return self if resource is None else self._bind(resource)


def operation(build: Callable[Concatenate[Any, P], Call[T]]) -> Operation[P, T]:
    """Make a method that builds a :class:`Call` an operation of both clients."""
    return Operation(build)


def paged(build: Callable[Concatenate[Any, P], PagedCall[T]]) -> Paged[P, T]:
    """Make a method that builds a :class:`PagedCall` an iterator of both clients."""
    return Paged(build)


def streamed(build: Callable[Concatenate[Any, P], EventStream[T]]) -> Streamed[P, T]:
    """Make a method that builds an :class:`EventStream` an iterator of both clients."""
    return Streamed(build)
