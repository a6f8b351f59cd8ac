#nullable enable
// MSBuild inline task (RoslynCodeTaskFactory, compiled for netstandard2.0). TorchSharp 0.107.0's libLibTorchSharp.so was linked
// against GCC 13+ and requires the symbol version GLIBCXX_3.4.32, which Debian 12's libstdc++ lacks.
// The only symbol bound to that version is _ZSt21ios_base_library_initv, a marker that <iostream>
// references and no relocation uses. Marking that one version requirement WEAK (VER_FLG_WEAK in its
// Vernaux entry) lets the dynamic loader accept the library. We act only when the system libstdc++
// lacks the version, only when the marker is the sole symbol at stake, and write via a temp file.
using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class WeakenGlibcxxRequirement : Task
{
    const string Version = "GLIBCXX_3.4.32";
    const string MarkerSymbol = "_ZSt21ios_base_library_initv";
    const uint ShtGnuVerneed = 0x6ffffffe, ShtGnuVersym = 0x6fffffff, ShtDynsym = 11;
    const ushort VerFlgWeak = 2;

    /// <summary>Shared libraries to fix (missing files are ignored).</summary>
    [Required] public ITaskItem[] Libraries { get; set; } = Array.Empty<ITaskItem>();

    public override bool Execute()
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux)) return true;
        string? libstdcxx = FindSystemLibStdCxx();
        if (libstdcxx != null && FileContains(libstdcxx, Version + "\0"))
        {
            Log.LogMessage(MessageImportance.Low, $"System libstdc++ ({libstdcxx}) provides {Version}; TorchSharp needs no fix.");
            return true;
        }
        foreach (var item in Libraries)
        {
            string path = item.GetMetadata("FullPath");
            if (!File.Exists(path)) continue;
            try
            {
                string outcome = Patch(path);
                if (outcome.Length > 0)
                    Log.LogMessage(MessageImportance.High, outcome);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidDataException)
            {
                Log.LogWarning($"Could not relax the {Version} requirement of {path}: {e.Message}. TorchSharp may fail to load on this system.");
            }
        }
        return !Log.HasLoggedErrors;
    }

    static string? FindSystemLibStdCxx()
    {
        string[] candidates =
        {
            "/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libstdc++.so.6",
            "/usr/lib/aarch64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6", "/lib64/libstdc++.so.6",
            "/usr/lib/libstdc++.so.6",
        };
        foreach (var c in candidates) if (File.Exists(c)) return c;
        return null;
    }

    static bool FileContains(string path, string text)
    {
        byte[] needle = Encoding.ASCII.GetBytes(text);
        byte[] hay = File.ReadAllBytes(path);
        for (int i = 0; i + needle.Length <= hay.Length; i++)
        {
            int j = 0;
            while (j < needle.Length && hay[i + j] == needle[j]) j++;
            if (j == needle.Length) return true;
        }
        return false;
    }

    /// <summary>Returns a message describing the change, or "" when nothing had to change.</summary>
    static string Patch(string path)
    {
        byte[] elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a 64-bit little-endian ELF file");

        ulong shoff = U64(elf, 0x28);
        int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);
        if (shoff == 0 || shentsize < 64 || shoff + (ulong)(shentsize * shnum) > (ulong)elf.Length)
            throw new InvalidDataException("section header table out of range");

        int Sec(int i) => checked((int)shoff + i * shentsize);
        uint Type(int i) => U32(elf, Sec(i) + 4);
        int Offset(int i) => checked((int)U64(elf, Sec(i) + 24));
        int Size(int i) => checked((int)U64(elf, Sec(i) + 32));
        int Link(int i) => (int)U32(elf, Sec(i) + 40);
        int Info(int i) => (int)U32(elf, Sec(i) + 44);

        int verneed = -1, versym = -1, dynsym = -1;
        for (int i = 0; i < shnum; i++)
        {
            uint t = Type(i);
            if (t == ShtGnuVerneed) verneed = i;
            else if (t == ShtGnuVersym) versym = i;
            else if (t == ShtDynsym) dynsym = i;
        }
        if (verneed < 0) return "";
        int strtab = Offset(Link(verneed));

        // Walk Verneed -> Vernaux entries looking for the version requirement.
        int vn = Offset(verneed), aux = -1;
        ushort versionIndex = 0;
        for (int n = 0; n < Info(verneed) && aux < 0; n++)
        {
            int cnt = U16(elf, vn + 2);
            int a = vn + (int)U32(elf, vn + 8);
            for (int k = 0; k < cnt; k++)
            {
                if (Str(elf, strtab + (int)U32(elf, a + 8)) == Version)
                {
                    aux = a; versionIndex = (ushort)U16(elf, a + 6);
                    break;
                }
                a += (int)U32(elf, a + 12);
            }
            vn += (int)U32(elf, vn + 12);
        }
        if (aux < 0) return "";
        ushort flags = (ushort)U16(elf, aux + 4);
        if ((flags & VerFlgWeak) != 0) return "";

        // Safety: only relax the requirement when the marker is the only symbol bound to it.
        if (versym >= 0 && dynsym >= 0)
        {
            int symOff = Offset(dynsym), symCount = Size(dynsym) / 24, dynstr = Offset(Link(dynsym));
            var bound = new List<string>();
            for (int s = 0; s < symCount; s++)
            {
                int v = U16(elf, Offset(versym) + 2 * s) & 0x7fff;
                if (v == versionIndex) bound.Add(Str(elf, dynstr + (int)U32(elf, symOff + 24 * s)));
            }
            if (bound.Count != 1 || bound[0] != MarkerSymbol)
                throw new InvalidDataException($"{Version} binds {string.Join(", ", bound)}; refusing to weaken it");
        }

        flags |= VerFlgWeak;
        elf[aux + 4] = (byte)(flags & 0xff);
        elf[aux + 5] = (byte)(flags >> 8);
        string tmp = path + ".weaken-tmp";
        File.WriteAllBytes(tmp, elf);
        File.Replace(tmp, path, null); // atomic rename: readers see the old or the new file, never half of one
        return $"workbook: this system's libstdc++ lacks {Version}; marked that requirement WEAK in {path} (only the unused marker {MarkerSymbol} is bound to it) so TorchSharp loads.";
    }

    static int U16(byte[] b, int o) => b[o] | b[o + 1] << 8;
    static uint U32(byte[] b, int o) => BitConverter.ToUInt32(b, o);
    static ulong U64(byte[] b, int o) => BitConverter.ToUInt64(b, o);
    static string Str(byte[] b, int o)
    {
        int end = Array.IndexOf(b, (byte)0, o);
        return Encoding.ASCII.GetString(b, o, (end < 0 ? b.Length : end) - o);
    }
}
