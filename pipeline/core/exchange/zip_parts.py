"""Zip members assembled from parts compressed apart, so a part can be kept and copied as is.

A REFI-QDA project is one large member (project.qde) and one small member per answer. A
refresh changes one session's run of the document and that session's members; the rest can be
kept compressed (pipeline/core/exchange/qdpx_sessions.py) if the zip is assembled from parts:

- `Deflater`: one part of a member's data as raw deflate, ended by a sync flush (an empty stored
  block: byte-aligned, not final) or, for the member's last part, by the final block. Each part
  starts with an empty window, so the parts' bytes back to back are one valid deflate stream
  (as pigz writes); `crc32_combine` gives the member's CRC-32 from the parts' CRCs and lengths.
- `write_member`: a member from its parts, header first with the exact sizes (ZIP64 when they
  need it), no seeking back.
- `Records`: small members' local records (header and deflated data) back to back, with what the
  central directory needs of each; `append_records` copies them into the zip.

The files are ordinary zips: tests/test_refi_qda.py reads them with `zipfile` (CRC checked) and
compares their members with the uncompressed document.
"""

from __future__ import annotations

import functools
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_LEVEL = zlib.Z_DEFAULT_COMPRESSION
_BLOCK = 1 << 20


def crc32_combine(crc1: int, crc2: int, len2: int) -> int:
    """The CRC-32 of A+B from crc1 = crc32(A), crc2 = crc32(B) and len2 = len(B) (zlib's
    crc32_combine: crc1 advanced over len2 zero bytes, by the GF(2) operators of 2^k zero
    bytes for each bit k of len2)."""
    for k, op in enumerate(_zero_byte_operators()):
        if len2 >> k == 0:
            break
        if len2 >> k & 1:
            crc1 = _times(op, crc1)
    return crc1 ^ crc2


@functools.cache
def _zero_byte_operators() -> list[list[int]]:
    """The operator advancing a CRC-32 over 2^k zero bytes, k = 0..63 (made once)."""
    op = [0xEDB88320] + [1 << n for n in range(31)]   # one zero bit
    for _ in range(3):   # eight zero bits: one byte
        op = _square(op)
    ops = [op]
    for _ in range(63):
        ops.append(_square(ops[-1]))
    return ops


def _times(matrix: list[int], vector: int) -> int:
    out, i = 0, 0
    while vector:
        if vector & 1:
            out ^= matrix[i]
        vector >>= 1
        i += 1
    return out


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, row) for row in matrix]


@dataclass
class Part:
    """One part of a member: the CRC-32 and length of what it holds, and its deflated bytes
    (in memory, or a file positioned at them)."""

    crc: int
    size: int
    compressed_size: int
    data: bytes | None = None
    file: BinaryIO | None = None

    def chunks(self) -> Iterator[bytes]:
        """The deflated bytes (from the file: `compressed_size` of them, then it is closed)."""
        if self.data is not None:
            yield self.data
        elif self.file is not None:
            with self.file:
                left = self.compressed_size
                while left > 0:
                    block = self.file.read(min(_BLOCK, left))
                    if not block:
                        raise ValueError("a kept zip part is shorter than its size")
                    left -= len(block)
                    yield block


class Deflater:
    """Deflate one part: `stream(chunks)` yields its compressed bytes; after it is consumed,
    `part()` holds the CRC-32 and sizes. `last`: the member's final part. `level`: zlib's."""

    def __init__(self, last: bool = False, level: int = _LEVEL):
        self._z = zlib.compressobj(level, zlib.DEFLATED, -15)
        self._last = last
        self.crc = self.size = self.compressed_size = 0

    def feed(self, data: bytes) -> bytes:
        self.crc = zlib.crc32(data, self.crc)
        self.size += len(data)
        out = self._z.compress(data)
        self.compressed_size += len(out)
        return out

    def end(self, last: bool | None = None) -> bytes:
        """The part's last bytes (`last`: whether it ends the member, if not said before)."""
        last = self._last if last is None else last
        out = self._z.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)
        self.compressed_size += len(out)
        return out

    def stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            out = self.feed(chunk)
            if out:
                yield out
        yield self.end()

    def part(self, data: bytes | None = None, file: BinaryIO | None = None) -> Part:
        return Part(self.crc, self.size, self.compressed_size, data, file)


def deflate(chunks: Iterable[bytes], last: bool = False, level: int = _LEVEL) -> Part:
    """A part in memory."""
    d = Deflater(last, level)
    data = b"".join(d.stream(chunks))
    return d.part(data)


def _seek_end(z: zipfile.ZipFile) -> None:
    if z.fp.tell() != z.start_dir:   # a seek flushes the buffer: only when needed
        z.fp.seek(z.start_dir)


def write_member(z: zipfile.ZipFile, name: str | zipfile.ZipInfo, parts: list[Part]) -> None:
    """The member `name` (or the ZipInfo given: its name, time and attributes) of a seekable
    zip open for writing, from its parts in order (the last one made with `last=True`), each
    copied as is."""
    if isinstance(name, zipfile.ZipInfo):
        zinfo = name
    else:
        zinfo = zipfile.ZipInfo(name, ZIP_TIME)
        zinfo.external_attr = 0o600 << 16
    zinfo.compress_type = zipfile.ZIP_DEFLATED
    crc = size = compressed = 0
    for p in parts:
        crc = crc32_combine(crc, p.crc, p.size)
        size += p.size
        compressed += p.compressed_size
    zinfo.CRC, zinfo.file_size, zinfo.compress_size = crc, size, compressed
    if zinfo.filename in z.NameToInfo:
        raise ValueError(f"duplicate zip member {zinfo.filename!r}")
    _check_writable(z)
    _seek_end(z)
    zinfo.header_offset = z.start_dir
    z._writecheck(zinfo)
    z._didModify = True
    z.fp.write(zinfo.FileHeader(size > zipfile.ZIP64_LIMIT or compressed > zipfile.ZIP64_LIMIT))
    for p in parts:
        for chunk in p.chunks():
            z.fp.write(chunk)
    z.start_dir = z.fp.tell()
    z.filelist.append(zinfo)
    z.NameToInfo[zinfo.filename] = zinfo


def _small_info(name: str, crc: int, compressed: int, size: int) -> zipfile.ZipInfo:
    zinfo = zipfile.ZipInfo(name, ZIP_TIME)
    zinfo.compress_type = zipfile.ZIP_DEFLATED
    zinfo.external_attr = 0o600 << 16
    zinfo.file_size, zinfo.compress_size, zinfo.CRC = size, compressed, crc
    return zinfo


@dataclass
class Records:
    """Small members' local records back to back (`data` in memory, or `file` positioned at
    them) and each one's (name, CRC-32, compressed size, size, offset in the records)."""

    entries: list[tuple[str, int, int, int, int]] = field(default_factory=list)
    data: bytes | None = None
    file: BinaryIO | None = None

    def stream(self, members: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
        """Yield the records of `members` ((name, data) each, under 2 GiB), noting entries."""
        offset = 0
        for name, data in members:
            z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
            compressed = z.compress(data) + z.flush()
            crc = zlib.crc32(data)
            header = _small_info(name, crc, len(compressed), len(data)).FileHeader(False)
            self.entries.append((name, crc, len(compressed), len(data), offset))
            offset += len(header) + len(compressed)
            yield header + compressed

    @property
    def size(self) -> int:
        """The records' length in bytes, as their entries say (a local header is 30 bytes and
        the name; no extra field)."""
        if not self.entries:
            return 0
        name, _crc, compressed, _size, offset = self.entries[-1]
        return offset + 30 + len(name.encode("utf-8")) + compressed

    def chunks(self) -> Iterator[bytes]:
        if self.data is not None:
            yield self.data
        elif self.file is not None:
            with self.file:
                yield from iter(lambda: self.file.read(_BLOCK), b"")


def records(members: Iterable[tuple[str, bytes]]) -> Records:
    """Records in memory."""
    r = Records()
    r.data = b"".join(r.stream(members))
    return r


def append_records(z: zipfile.ZipFile, recs: Records) -> None:
    """Copy the records into a seekable zip open for writing, and list their members. A name
    the zip (or the records) already has is an error, raised before anything is written."""
    names = [e[0] for e in recs.entries]
    if len(set(names)) < len(names) or any(n in z.NameToInfo for n in names):
        raise ValueError("duplicate zip member among the records")
    _check_writable(z)
    _seek_end(z)
    base = z.start_dir
    z._didModify = True
    written = 0
    for chunk in recs.chunks():
        z.fp.write(chunk)
        written += len(chunk)
    z.start_dir = z.fp.tell()
    if written != recs.size:
        raise ValueError("kept zip records are not the size their entries say")
    for name, crc, compressed, size, offset in recs.entries:
        zinfo = _small_info(name, crc, compressed, size)
        zinfo.header_offset = base + offset
        z.filelist.append(zinfo)
        z.NameToInfo[name] = zinfo


def _check_writable(z: zipfile.ZipFile) -> None:
    if not z._seekable or z._writing or z.mode not in ("w", "x", "a") or not z.fp:
        raise ValueError("parts are written into a seekable zip open for writing, no member open")
