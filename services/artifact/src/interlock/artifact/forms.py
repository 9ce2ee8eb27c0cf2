"""A ``multipart/form-data`` upload read as it arrives: text fields, then one file.

Starlette's own form parser spools a file to disk before the route sees it; here the
route gets the fields that come before the file part, then the file's bytes as the
client sends them, so an upload is streamed to S3 without being held anywhere.
Fields must therefore precede the file part (``curl -F`` sends them in the order
given): a field after it fails the upload (422) rather than going unread.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from interlock.artifact.domain import InvalidArtifactError

__all__ = ["FileUpload", "read_upload"]

MAX_FIELDS = 16
"""Most text fields before the file."""
MAX_FIELD_BYTES = 65_536
"""Longest text field (422 beyond)."""


@dataclass(frozen=True, kw_only=True)
class FileUpload:
    """The fields before the file part, the file's declared type, and its bytes."""

    fields: dict[str, str]
    filename: str | None
    content_type: str | None
    chunks: AsyncIterator[bytes]


class _Part:
    def __init__(self) -> None:
        self.headers: dict[bytes, bytes] = {}
        self.header_field = b""
        self.header_value = b""
        self.name = ""
        self.filename: str | None = None
        self.data = bytearray()


class _Events:
    """What the parser reported while it read one chunk."""

    def __init__(self) -> None:
        self.part = _Part()
        self.file_part = self.part
        self.file_started = False
        self.file_data: list[bytes] = []
        self.file_ended = False
        self.fields: dict[str, str] = {}
        self.late_fields: list[str] = []
        self.in_file = False

    def on_part_begin(self) -> None:
        self.part = _Part()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.part.header_field += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.part.header_value += data[start:end]

    def on_header_end(self) -> None:
        self.part.headers[self.part.header_field.lower()] = self.part.header_value
        self.part.header_field = self.part.header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.part.headers.get(b"content-disposition", b""))
        self.part.name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        self.part.filename = None if filename is None else filename.decode("utf-8", "replace")
        if self.part.name == "file" and not self.file_started:
            self.file_started = self.in_file = True
            self.file_part = self.part

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.in_file:
            self.file_data.append(data[start:end])
        elif not self.file_started:
            self.part.data += data[start:end]
            if len(self.part.data) > MAX_FIELD_BYTES:
                raise InvalidArtifactError(f"a field is longer than {MAX_FIELD_BYTES} bytes")

    def on_part_end(self) -> None:
        if self.in_file:
            self.in_file = False
            self.file_ended = True
        elif self.file_started:
            self.late_fields.append(self.part.name)
        else:
            if len(self.fields) >= MAX_FIELDS:
                raise InvalidArtifactError(f"at most {MAX_FIELDS} fields")
            try:
                self.fields[self.part.name] = self.part.data.decode()
            except UnicodeDecodeError:
                raise InvalidArtifactError(f"field {self.part.name!r} is not UTF-8") from None


async def read_upload(request: Request) -> FileUpload:
    """Read the fields up to the file part named ``file``; its bytes follow lazily.

    Raises:
        InvalidArtifactError: Not ``multipart/form-data``, no ``file`` part, a field too
            long, or the body ends early (422).
    """
    media_type, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if media_type != b"multipart/form-data" or not boundary:
        raise InvalidArtifactError("the upload is a multipart/form-data body with a file part")
    events = _Events()
    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": events.on_part_begin,
            "on_header_field": events.on_header_field,
            "on_header_value": events.on_header_value,
            "on_header_end": events.on_header_end,
            "on_headers_finished": events.on_headers_finished,
            "on_part_data": events.on_part_data,
            "on_part_end": events.on_part_end,
        },
    )
    stream = request.stream().__aiter__()
    while not events.file_started:
        try:
            chunk = await anext(stream)
        except StopAsyncIteration:
            raise InvalidArtifactError("the form has no part named file") from None
        _write(parser, chunk)
    part = events.file_part
    return FileUpload(
        fields=dict(events.fields),
        filename=part.filename,
        content_type=part.headers.get(b"content-type", b"").decode("latin-1") or None,
        chunks=_file_chunks(parser, events, stream),
    )


def _write(parser: MultipartParser, chunk: bytes) -> None:
    try:
        parser.write(chunk)
    except InvalidArtifactError:
        raise
    except Exception as error:  # python-multipart's parse errors
        raise InvalidArtifactError(f"the form does not parse: {error}") from None


async def _file_chunks(
    parser: MultipartParser, events: _Events, stream: AsyncIterator[bytes]
) -> AsyncIterator[bytes]:
    while True:
        if events.file_data:
            pending, events.file_data = events.file_data, []
            for data in pending:
                yield data
        if events.file_ended:
            async for rest in stream:
                _write(parser, rest)
            if events.late_fields:
                late = ", ".join(repr(name[:64]) for name in events.late_fields[:5])
                raise InvalidArtifactError(f"fields come before the file part, not after: {late}")
            return
        try:
            chunk = await anext(stream)
        except StopAsyncIteration:
            raise InvalidArtifactError("the body ended inside the file part") from None
        _write(parser, chunk)
