using System.Security.Cryptography;
using System.Text;

namespace Workbook.Util;

/// <summary>
/// Every file the workbook writes goes through here, so that a reader never sees half a file and a planted link
/// cannot redirect a write: the content goes to a temporary file created exclusively (<c>O_CREAT|O_EXCL</c>, which
/// fails on any existing entry, a symbolic link included) under an unpredictable name in the target's folder, and is
/// then renamed over the target. A rename replaces a link at the target instead of writing through it.
/// </summary>
public static class AtomicFile
{
    /// <summary><c>.{name}.{16 random hex digits}.tmp</c> beside <paramref name="path"/>: hidden, and not guessable in advance.</summary>
    public static string TempName(string path)
    {
        string full = Path.GetFullPath(path);
        return Path.Combine(Path.GetDirectoryName(full)!, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");
    }

    static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    public static void WriteAllText(string path, string text) => Write(path, s => s.Write(Utf8.GetBytes(text)));

    public static void WriteAllBytes(string path, byte[] bytes) => Write(path, s => s.Write(bytes));

    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/>; the file appears complete or not at all.</summary>
    public static void Write(string path, Action<Stream> write) => WriteAll(new[] { (path, write) });

    /// <summary>
    /// Writes several text files: every temporary file is written first, and only when all of them are complete are
    /// they renamed into place; an error before that leaves none of the targets changed.
    /// </summary>
    public static void WriteAllTexts(IReadOnlyList<(string Path, string Text)> files) =>
        WriteAll(files.Select(f => (f.Path, (Action<Stream>)(s => s.Write(Utf8.GetBytes(f.Text))))).ToList());

    static void WriteAll(IReadOnlyList<(string Path, Action<Stream> Write)> files)
    {
        var temps = new List<(string Temp, string Target)>();
        try
        {
            foreach (var (path, write) in files)
            {
                string full = Path.GetFullPath(path);
                string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' names no file.");
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder '{dir}' does not exist.");
                if (FileSystemEntries.KindOf(full) == EntryKind.Directory) throw new IOException($"'{path}' is a folder, not a file.");
                string temp = TempName(full);
                using var stream = CreateExclusive(temp);
                temps.Add((temp, full));
                write(stream);
                stream.Flush(flushToDisk: true);
            }
            foreach (var (temp, target) in temps) File.Move(temp, target, overwrite: true);
        }
        finally
        {
            foreach (var (temp, _) in temps)
                if (FileSystemEntries.KindOf(temp) != EntryKind.Missing) File.Delete(temp);
        }
    }

    /// <summary>A new file that did not exist in any form before (fails on an existing file or link instead of following it).</summary>
    public static FileStream CreateExclusive(string path, bool useAsync = false) =>
        new(path, FileMode.CreateNew, FileAccess.Write, FileShare.Read, 1 << 16, useAsync);

    /// <summary>
    /// Opens an existing regular file to append to it; a link, folder or device there is refused (and a missing file is
    /// an error, never silently created: use <see cref="CreateExclusive"/> for a new one).
    /// </summary>
    public static FileStream OpenForAppend(string path, bool useAsync = false)
    {
        var kind = FileSystemEntries.KindOf(path);
        if (kind != EntryKind.RegularFile)
            throw new IOException($"'{path}' is {Describe(kind)}, not a regular file; refusing to append to it.");
        return new FileStream(path, FileMode.Append, FileAccess.Write, FileShare.Read, 1 << 16, useAsync);
    }

    internal static string Describe(EntryKind kind) => kind switch
    {
        EntryKind.Missing => "missing",
        EntryKind.Directory => "a folder",
        EntryKind.SymbolicLink => "a symbolic link",
        EntryKind.Other => "a FIFO, socket or device",
        _ => "a regular file",
    };
}
