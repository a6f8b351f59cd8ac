using System.Runtime.InteropServices;

namespace Workbook.Util;

/// <summary>What a path names, as <c>lstat</c> sees it (a symbolic link is reported as one, not followed).</summary>
public enum EntryKind { Missing, RegularFile, Directory, SymbolicLink, Other }

/// <summary>
/// File-system facts .NET does not expose: whether a path is a regular file (not a FIFO, socket or device, which
/// .NET reports as ordinary files and whose opening can hang or read forever), its real path with every symbolic
/// link resolved, and whether it lies inside a folder once resolved.
/// </summary>
public static class FileSystemEntries
{
    /// <summary>At most this many links are followed while resolving one path (Linux's own limit is 40).</summary>
    const int MaxLinkHops = 40;

    /// <summary>The kind of <paramref name="path"/> itself (a link is not followed).</summary>
    public static EntryKind KindOf(string path)
    {
        if (OperatingSystem.IsLinux() && StatxMode(path) is int mode)
            return (mode & 0xF000) switch
            {
                0 => EntryKind.Missing,
                0x8000 => EntryKind.RegularFile,
                0x4000 => EntryKind.Directory,
                0xA000 => EntryKind.SymbolicLink,
                _ => EntryKind.Other,
            };
        var info = new FileInfo(path);
        if (info.LinkTarget != null) return EntryKind.SymbolicLink;
        if (Directory.Exists(path)) return EntryKind.Directory;
        return info.Exists ? EntryKind.RegularFile : EntryKind.Missing;
    }

    /// <summary>The kind of what <paramref name="path"/> finally names, links followed (Missing for a dangling or looping link).</summary>
    public static EntryKind TargetKindOf(string path)
    {
        try
        {
            return KindOf(RealPath(path));
        }
        catch (IOException)
        {
            return EntryKind.Missing;
        }
    }

    /// <summary>
    /// The absolute path with every symbolic link resolved, component by component (a missing tail is kept as it is).
    /// Throws an <see cref="IOException"/> on a link loop or a chain longer than 40 links.
    /// </summary>
    public static string RealPath(string path)
    {
        string full = Path.GetFullPath(path);
        string root = Path.GetPathRoot(full)!;
        var pending = new Stack<string>(full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse());
        string current = root;
        int hops = 0;
        while (pending.Count > 0)
        {
            string part = pending.Pop();
            if (part == ".") continue;
            if (part == "..")
            {
                current = Path.GetDirectoryName(current) ?? root;
                continue;
            }
            string next = Path.Combine(current, part);
            string? target = KindOf(next) == EntryKind.SymbolicLink ? new FileInfo(next).LinkTarget : null;
            if (target is null)
            {
                current = next;
                continue;
            }
            if (++hops > MaxLinkHops) throw new IOException($"'{path}': too many levels of symbolic links (a link loop?).");
            string resolved = Path.IsPathRooted(target) ? target : Path.Combine(current, target);
            string resolvedFull = Path.GetFullPath(resolved);
            string resolvedRoot = Path.GetPathRoot(resolvedFull)!;
            foreach (var p in resolvedFull[resolvedRoot.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries).Reverse())
                pending.Push(p);
            current = resolvedRoot;
        }
        return current;
    }

    /// <summary>Whether <paramref name="path"/>, all links resolved, is <paramref name="folder"/> (resolved too) or lies below it.</summary>
    public static bool IsInside(string path, string folder)
    {
        try
        {
            string real = RealPath(path), root = RealPath(folder);
            return real == root || real.StartsWith(root.EndsWith(Path.DirectorySeparatorChar) ? root : root + Path.DirectorySeparatorChar, StringComparison.Ordinal);
        }
        catch (IOException)
        {
            return false;
        }
    }

    // statx(2) has one layout on every Linux architecture (unlike struct stat): stx_mode is the u16 at byte 28.
    const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100, StatxType = 0x1, StatxModeOffset = 28, StatxSize = 256;

#pragma warning disable SYSLIB1054 // LibraryImport would need unsafe code enabled for the whole library
    [DllImport("libc", EntryPoint = "statx", SetLastError = true)]
    static extern int Statx(int dirfd, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, uint mask, [Out] byte[] buffer);
#pragma warning restore SYSLIB1054

    static bool _statxMissing;

    /// <summary>st_mode of <paramref name="path"/> (not following a link); null when it does not exist or statx is unavailable.</summary>
    static int? StatxMode(string path)
    {
        if (_statxMissing) return FallbackMode(path);
        var buffer = new byte[StatxSize];
        try
        {
            if (Statx(AtFdCwd, path, AtSymlinkNoFollow, StatxType, buffer) != 0)
                return Marshal.GetLastPInvokeError() is 2 or 20 ? 0 : FallbackMode(path); // ENOENT, ENOTDIR: missing
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            _statxMissing = true; // glibc before 2.28
            return FallbackMode(path);
        }
        return BitConverter.ToUInt16(buffer, StatxModeOffset);
    }

    /// <summary>What .NET can tell without statx: links and directories, everything else taken for a regular file.</summary>
    static int? FallbackMode(string path)
    {
        var info = new FileInfo(path);
        if (info.LinkTarget != null) return 0xA000;
        if (Directory.Exists(path)) return 0x4000;
        return info.Exists ? 0x8000 : 0;
    }
}
