#!/usr/bin/env python3
"""Lets TorchSharp's libLibTorchSharp.so load where the system libstdc++ lacks GLIBCXX_3.4.32.

The library was linked with GCC 13+, which makes <iostream> reference the marker _ZSt21ios_base_library_initv,
versioned GLIBCXX_3.4.32; no relocation uses it. Setting VER_FLG_WEAK on that one version requirement (its Vernaux
entry in .gnu.version_r) makes the dynamic loader accept a libstdc++ without it. This is the same edit as
build/WeakenGlibcxxRequirement.cs, for machines without the .NET SDK. It refuses when any other symbol is bound to
the version, does nothing when the flag is already set, and writes through a temporary file.

usage: weaken_glibcxx.py LIBRARY   (exit 0 when the library is fine afterwards; prints what it changed)
"""
import os
import struct
import sys

VERSION = b"GLIBCXX_3.4.32"
MARKER = b"_ZSt21ios_base_library_initv"
SHT_DYNSYM, SHT_GNU_VERNEED, SHT_GNU_VERSYM = 11, 0x6FFFFFFE, 0x6FFFFFFF
VER_FLG_WEAK = 2


def cstr(data, offset):
    return data[offset:data.index(b"\0", offset)]


def weaken(path):
    with open(path, "rb") as f:
        elf = bytearray(f.read())
    if elf[:4] != b"\x7fELF" or elf[4] != 2 or elf[5] != 1:
        raise ValueError(f"{path}: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum = struct.unpack_from("<HH", elf, 0x3A)
    sections = []
    for i in range(shnum):
        # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size, sh_link, sh_info
        _, kind, _, _, offset, size, link, info = struct.unpack_from("<IIQQQQII", elf, shoff + i * shentsize)
        sections.append((kind, offset, size, link, info))
    verneed = next((s for s in sections if s[0] == SHT_GNU_VERNEED), None)
    if verneed is None:
        return "no version requirements; nothing to do"
    strtab = sections[verneed[3]][1]
    aux_at, version_index = None, None
    vn = verneed[1]
    for _ in range(verneed[4]):
        _, cnt, _, aux, nxt = struct.unpack_from("<HHIII", elf, vn)
        a = vn + aux
        for _ in range(cnt):
            _, flags, other, name, anext = struct.unpack_from("<IHHII", elf, a)
            if cstr(elf, strtab + name) == VERSION:
                aux_at, version_index = a, other
                break
            a += anext
        if aux_at is not None or nxt == 0:
            break
        vn += nxt
    if aux_at is None:
        return f"{VERSION.decode()} is not required; nothing to do"
    flags, = struct.unpack_from("<H", elf, aux_at + 4)
    if flags & VER_FLG_WEAK:
        return f"{VERSION.decode()} is already a weak requirement; nothing to do"
    dynsym = next((s for s in sections if s[0] == SHT_DYNSYM), None)
    versym = next((s for s in sections if s[0] == SHT_GNU_VERSYM), None)
    if dynsym is not None and versym is not None:
        dynstr = sections[dynsym[3]][1]
        bound = []
        for i in range(dynsym[2] // 24):
            v, = struct.unpack_from("<H", elf, versym[1] + 2 * i)
            if v & 0x7FFF == version_index:
                name, = struct.unpack_from("<I", elf, dynsym[1] + 24 * i)
                bound.append(cstr(elf, dynstr + name))
        if bound != [MARKER]:
            raise ValueError(f"{path}: {VERSION.decode()} binds {[b.decode() for b in bound]}; refusing to weaken it")
    struct.pack_into("<H", elf, aux_at + 4, flags | VER_FLG_WEAK)
    tmp = f"{path}.weaken-tmp"
    with open(tmp, "wb") as f:
        f.write(elf)
    os.chmod(tmp, os.stat(path).st_mode)
    os.replace(tmp, path)
    return (f"marked {VERSION.decode()} WEAK in {path} (only the unused marker {MARKER.decode()} is bound to it) "
            "because this system's libstdc++ lacks it")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    try:
        print(f"weaken_glibcxx: {weaken(sys.argv[1])}")
    except (OSError, ValueError) as e:
        sys.exit(f"weaken_glibcxx: {e}")
