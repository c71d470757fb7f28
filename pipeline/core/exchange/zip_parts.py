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
  central directory needs of each; `append_records` copies them into a `PartsZip`, which writes
  their central directory entries from arrays when it closes (a million members: no ZipInfo
  each, the same bytes as zipfile writes).

The files are ordinary zips: tests/test_refi_qda.py reads them with `zipfile` (CRC checked) and
compares their members with the uncompressed document.
"""

from __future__ import annotations

import functools
import struct
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

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
    if zinfo.filename in z.NameToInfo or zinfo.filename in getattr(z, "record_names", ()):
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


_PROTO = _small_info("a", 0, 0, 0)
_DOS_TIME = ZIP_TIME[3] << 11 | ZIP_TIME[4] << 5 | (ZIP_TIME[5] // 2)
_DOS_DATE = (ZIP_TIME[0] - 1980) << 9 | ZIP_TIME[1] << 5 | ZIP_TIME[2]
_UTF8_NAME = 0x800   # the general purpose flag for a UTF-8 name (zipfile sets it likewise)


def _name_flags(name: str) -> tuple[bytes, int]:
    """zipfile's encoding of a member name: ASCII, else UTF-8 with the flag bit. ZipInfo would
    cut a name at a NUL, and the central directory holds names of up to 65535 bytes: such
    names are refused."""
    if "\0" in name or len(name) > 0xFFFF // 4 and len(name.encode("utf-8")) > 0xFFFF:
        raise ValueError(f"zip member name not allowed: {name[:40]!r}")
    try:
        return name.encode("ascii"), _PROTO.flag_bits
    except UnicodeEncodeError:
        return name.encode("utf-8"), _PROTO.flag_bits | _UTF8_NAME


def _local_header(name: bytes, flags: int, crc: int, compressed: int, size: int) -> bytes:
    """A small member's local header, the bytes `_small_info(...).FileHeader(False)` gives."""
    return struct.pack(zipfile.structFileHeader, zipfile.stringFileHeader, _PROTO.extract_version,
                       _PROTO.reserved, flags, zipfile.ZIP_DEFLATED, _DOS_TIME, _DOS_DATE, crc,
                       compressed, size, len(name), 0) + name


# a central directory entry's fixed 46 bytes (zipfile.structCentralDir) as a numpy record
_CENTRAL = np.dtype([(n, "<" + t) for n, t in (
    ("signature", "u4"), ("create_version", "u1"), ("create_system", "u1"),
    ("extract_version", "u1"), ("reserved", "u1"), ("flags", "u2"), ("method", "u2"),
    ("time", "u2"), ("date", "u2"), ("crc", "u4"), ("compressed", "u4"), ("size", "u4"),
    ("name_length", "u2"), ("extra_length", "u2"), ("comment_length", "u2"), ("disk", "u2"),
    ("internal_attr", "u2"), ("external_attr", "u4"), ("offset", "u4"))])
assert _CENTRAL.itemsize == struct.calcsize(zipfile.structCentralDir)


COLUMNS = ("names", "crcs", "compressed", "sizes", "offsets")


@dataclass
class Records:
    """Small members' local records back to back (`data` in memory, or `file` positioned at
    them) and, column by column, each one's name, CRC-32, compressed size, size and offset
    in the records (lists, or arrays read back)."""

    names: list[str] = field(default_factory=list)
    crcs: Sequence[int] = field(default_factory=list)
    compressed: Sequence[int] = field(default_factory=list)
    sizes: Sequence[int] = field(default_factory=list)
    offsets: Sequence[int] = field(default_factory=list)
    data: bytes | None = None
    file: BinaryIO | None = None

    def stream(self, members: Iterable[tuple[str, bytes]]) -> Iterator[bytes]:
        """Yield the records of `members` ((name, data) each, under 2 GiB), noting each."""
        offset = 0
        for name, data in members:
            z = zlib.compressobj(_LEVEL, zlib.DEFLATED, -15)
            compressed = z.compress(data) + z.flush()
            crc = zlib.crc32(data)
            header = _local_header(*_name_flags(name), crc, len(compressed), len(data))
            for column, value in zip(self.columns(), (name, crc, len(compressed), len(data),
                                                      offset), strict=True):
                column.append(value)
            offset += len(header) + len(compressed)
            yield header + compressed

    def columns(self) -> tuple[Sequence, ...]:
        return tuple(getattr(self, c) for c in COLUMNS)

    def listed(self) -> Records:
        """The same entries without the bytes."""
        return Records(*self.columns())

    def to_json(self) -> dict[str, list]:
        return {"names": list(self.names),
                **{c: np.asarray(getattr(self, c), dtype=np.int64).tolist() for c in COLUMNS[1:]}}

    @classmethod
    def from_json(cls, data: dict, file: BinaryIO | None = None) -> Records:
        """Entries stored by `to_json` (ValueError, KeyError or TypeError if they are not:
        columns of other lengths or types, or offsets that are not the records back to back
        from 0)."""
        names = data["names"]
        if not all(type(n) is str for n in names):
            raise TypeError("zip record names are not text")
        numbers = [np.asarray(data[c], dtype=np.int64) for c in COLUMNS[1:]]
        if any(len(col) != len(names) for col in numbers):
            raise ValueError("zip record columns of different lengths")
        _crcs, compressed, _sizes, offsets = numbers
        joined = "".join(names)
        lengths = np.fromiter(map(len, names) if joined.isascii() else
                              (len(n.encode("utf-8")) for n in names), dtype=np.int64,
                              count=len(names))
        if len(names) and (offsets[0] != 0 or not np.array_equal(
                np.diff(offsets), 30 + lengths[:-1] + compressed[:-1])):
            raise ValueError("zip record offsets are not the records back to back")
        return cls(names, *numbers, file=file)

    def __len__(self) -> int:
        return len(self.names)

    @property
    def size(self) -> int:
        """The records' length in bytes, as their entries say (a local header is 30 bytes and
        the name; no extra field)."""
        if not len(self):
            return 0
        return int(self.offsets[-1]) + 30 + len(self.names[-1].encode("utf-8")) \
            + int(self.compressed[-1])

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


class PartsZip(zipfile.ZipFile):
    """A zip open for writing that also takes `Records` (`append_records`). Their members are
    not listed one ZipInfo each (nor in `namelist()` while the zip is open): when it closes,
    their central directory entries are set from arrays, in the order the members were
    written among the others; byte for byte what zipfile writes for the same members."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # (ordinary members written before them, where they start in the zip, the records)
        self.records: list[tuple[int, int, Records]] = []
        self.record_names: set[str] = set()

    def _writecheck(self, zinfo: zipfile.ZipInfo) -> None:
        if zinfo.filename in self.record_names:   # as zipfile does for its listed members
            warnings.warn(f"Duplicate name: {zinfo.filename!r}", stacklevel=3)
        super()._writecheck(zinfo)

    def _write_end_record(self) -> None:
        listed = 0
        for before, base, recs in self.records:
            for zinfo in self.filelist[listed:before]:
                self.fp.write(_central_entry(zinfo))
            listed = before
            self.fp.write(_central_entries(base, recs))
        for zinfo in self.filelist[listed:]:
            self.fp.write(_central_entry(zinfo))
        count = len(self.filelist) + sum(len(recs) for *_at, recs in self.records)
        self.fp.write(_end_records(count, self.start_dir, self.fp.tell(), self._comment,
                                   self._allowZip64))
        self.fp.write(self._comment)
        if self.mode == "a":
            self.fp.truncate()
        self.fp.flush()


def _central_entry(zinfo: zipfile.ZipInfo) -> bytes:
    """zipfile's central directory entry for `zinfo` (ZipFile._write_end_record, Python 3.11):
    ZIP64 extra field when a size or the offset passes zipfile.ZIP64_LIMIT."""
    extra = []
    file_size, compress_size, header_offset = (zinfo.file_size, zinfo.compress_size,
                                               zinfo.header_offset)
    if file_size > zipfile.ZIP64_LIMIT or compress_size > zipfile.ZIP64_LIMIT:
        extra += [file_size, compress_size]
        file_size = compress_size = 0xFFFFFFFF
    if header_offset > zipfile.ZIP64_LIMIT:
        extra.append(header_offset)
        header_offset = 0xFFFFFFFF
    extra_data, min_version = zinfo.extra, 0
    if extra:
        extra_data = struct.pack("<HH" + "Q" * len(extra), 1, 8 * len(extra), *extra) \
            + zipfile._strip_extra(extra_data, (1,))
        min_version = zipfile.ZIP64_VERSION
    if zinfo.compress_type == zipfile.ZIP_BZIP2:
        min_version = max(zipfile.BZIP2_VERSION, min_version)
    elif zinfo.compress_type == zipfile.ZIP_LZMA:
        min_version = max(zipfile.LZMA_VERSION, min_version)
    dt = zinfo.date_time
    filename, flag_bits = zinfo._encodeFilenameFlags()
    return struct.pack(
        zipfile.structCentralDir, zipfile.stringCentralDir,
        max(min_version, zinfo.create_version), zinfo.create_system,
        max(min_version, zinfo.extract_version), zinfo.reserved, flag_bits,
        zinfo.compress_type, dt[3] << 11 | dt[4] << 5 | (dt[5] // 2),
        (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2], zinfo.CRC, compress_size, file_size,
        len(filename), len(extra_data), len(zinfo.comment), 0, zinfo.internal_attr,
        zinfo.external_attr, header_offset) + filename + extra_data + zinfo.comment


def _central_entries(base: int, recs: Records) -> bytes:
    """The central directory entries of records starting at `base` in the zip: the fixed 46
    bytes of every entry set by numpy, each followed by its name. A member whose size or
    offset needs ZIP64 (past zipfile.ZIP64_LIMIT, 2 GiB) is listed through a ZipInfo as
    zipfile does."""
    if not len(recs):
        return b""
    names = recs.names
    offsets = np.asarray(recs.offsets, dtype=np.int64) + base
    compressed = np.asarray(recs.compressed, dtype=np.int64)
    sizes = np.asarray(recs.sizes, dtype=np.int64)
    crcs = np.asarray(recs.crcs, dtype=np.int64)
    if min(offsets.min(), compressed.min(), sizes.min(), crcs.min()) < 0 \
            or crcs.max() > 0xFFFFFFFF:
        raise ValueError("zip records with a negative size or offset, or no CRC-32")
    if max(offsets.max(), compressed.max(), sizes.max()) > zipfile.ZIP64_LIMIT:
        return b"".join(_central_entry(_listed(base, *entry))
                        for entry in zip(*recs.columns(), strict=True))
    fixed = np.zeros(len(names), _CENTRAL)
    fixed["signature"] = int.from_bytes(zipfile.stringCentralDir, "little")
    fixed["create_version"] = _PROTO.create_version
    fixed["create_system"] = _PROTO.create_system
    fixed["extract_version"] = _PROTO.extract_version
    fixed["reserved"] = _PROTO.reserved
    fixed["method"] = zipfile.ZIP_DEFLATED
    fixed["time"], fixed["date"] = _DOS_TIME, _DOS_DATE
    fixed["crc"] = crcs
    fixed["compressed"], fixed["size"], fixed["offset"] = compressed, sizes, offsets
    fixed["internal_attr"] = _PROTO.internal_attr
    fixed["external_attr"] = _PROTO.external_attr
    lengths = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    joined = "".join(names)
    if joined.isascii() and (lengths == lengths[0]).all() and "\0" not in joined \
            and lengths[0] <= 0xFFFF:   # a project's: Sources/<GUID>.txt
        fixed["flags"], fixed["name_length"] = _PROTO.flag_bits, lengths[0]
        table = np.empty((len(names), _CENTRAL.itemsize + int(lengths[0])), dtype=np.uint8)
        table[:, :_CENTRAL.itemsize] = fixed.view(np.uint8).reshape(len(names), -1)
        table[:, _CENTRAL.itemsize:] = np.frombuffer(joined.encode("ascii"), dtype=np.uint8
                                                     ).reshape(len(names), -1)
        return table.tobytes()
    encoded = [_name_flags(n) for n in names]
    fixed["flags"] = [flags for _name, flags in encoded]
    fixed["name_length"] = [len(name) for name, _flags in encoded]
    raw, width = fixed.tobytes(), _CENTRAL.itemsize
    return b"".join([raw[i * width:(i + 1) * width] + name
                     for i, (name, _flags) in enumerate(encoded)])


def _listed(base: int, name: str, crc: int, compressed: int, size: int, offset: int
            ) -> zipfile.ZipInfo:
    zinfo = _small_info(name, int(crc), int(compressed), int(size))
    zinfo.header_offset = base + int(offset)
    return zinfo


def _end_records(count: int, start: int, end: int, comment: bytes, allow_zip64: bool) -> bytes:
    """The end of central directory record (after the ZIP64 end record and locator when the
    count, offset or size need them), as ZipFile._write_end_record writes it, less the
    comment."""
    size, out = end - start, b""
    if count > zipfile.ZIP_FILECOUNT_LIMIT or start > zipfile.ZIP64_LIMIT \
            or size > zipfile.ZIP64_LIMIT:
        if not allow_zip64:
            raise zipfile.LargeZipFile("the central directory would require ZIP64 extensions")
        out += struct.pack(zipfile.structEndArchive64, zipfile.stringEndArchive64, 44, 45, 45,
                           0, 0, count, count, size, start)
        out += struct.pack(zipfile.structEndArchive64Locator, zipfile.stringEndArchive64Locator,
                           0, end, 1)
        count, size, start = min(count, 0xFFFF), min(size, 0xFFFFFFFF), min(start, 0xFFFFFFFF)
    return out + struct.pack(zipfile.structEndArchive, zipfile.stringEndArchive, 0, 0, count,
                             count, size, start, len(comment))


def append_records(z: PartsZip, recs: Records) -> None:
    """Copy the records into a seekable PartsZip open for writing, and list their members. A
    name the zip (or the records) already has is an error, raised before anything is
    written."""
    names = recs.names
    if len(set(names)) < len(names) or any(
            n in z.NameToInfo or n in z.record_names for n in names):
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
    z.records.append((len(z.filelist), base, recs.listed()))
    z.record_names.update(names)


def _check_writable(z: zipfile.ZipFile) -> None:
    if not z._seekable or z._writing or z.mode not in ("w", "x", "a") or not z.fp:
        raise ValueError("parts are written into a seekable zip open for writing, no member open")
