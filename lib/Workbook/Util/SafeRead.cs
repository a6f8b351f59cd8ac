using System.IO.Enumeration;

namespace Workbook.Util;

/// <summary>
/// Reads files the workbook did not write (checkpoints' JSON, tokenizers, datasets, circuits, the hub cache): only
/// regular files (a FIFO would block the open, <c>/dev/zero</c> would never end), never more than a stated number of
/// bytes (checked before anything is allocated, and again while reading), optionally only when the path resolves
/// inside a given folder; and walks folders without following linked folders and with a bound on the entries.
/// Every refusal is a one-line message naming the path, wrapped by the caller's own exception type.
/// </summary>
public static class SafeRead
{
    /// <summary>Reads all of <paramref name="path"/> (links followed) if it is a regular file of at most <paramref name="maxBytes"/> bytes.</summary>
    /// <param name="error">Makes the caller's exception from a message (which names the path).</param>
    /// <param name="insideFolder">When given, the path must resolve to a file inside this folder (itself resolved).</param>
    public static byte[] ReadAllBytes(string path, long maxBytes, Func<string, Exception> error, string? insideFolder = null)
    {
        string real;
        try
        {
            real = FileSystemEntries.RealPath(path);
        }
        catch (IOException e)
        {
            throw error($"{path}: {e.Message}");
        }
        if (insideFolder != null && !FileSystemEntries.IsInside(real, insideFolder))
            throw error($"{path}: resolves to {real}, outside {insideFolder}; refusing to read it.");
        var kind = FileSystemEntries.KindOf(real);
        if (kind == EntryKind.Missing) throw error($"{path}: does not exist.");
        if (kind != EntryKind.RegularFile)
            throw error($"{path}: is {AtomicFile.Describe(kind)}, not a regular file; only regular files are read.");
        try
        {
            using var stream = new FileStream(real, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
            long length = stream.Length;
            if (length > maxBytes) throw error($"{path}: is {length:N0} bytes, more than the {maxBytes:N0} accepted for this file.");
            var buffer = new byte[length];
            int read = 0;
            while (read < buffer.Length)
            {
                int n = stream.Read(buffer, read, buffer.Length - read);
                if (n == 0) throw error($"{path}: changed while it was read (it shrank).");
                read += n;
            }
            if (stream.ReadByte() != -1) throw error($"{path}: changed while it was read (it grew).");
            return buffer;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw error($"{path}: cannot be read: {e.Message}");
        }
    }

    /// <summary>Reads a UTF-8 text file (as <see cref="ReadAllBytes"/>); invalid UTF-8 is refused.</summary>
    public static string ReadAllText(string path, long maxBytes, Func<string, Exception> error, string? insideFolder = null)
    {
        var bytes = ReadAllBytes(path, maxBytes, error, insideFolder);
        if (!JsonInput.IsUtf8(bytes)) throw error($"{path}: not valid UTF-8 text.");
        var span = bytes.AsSpan();
        if (span.StartsWith(new byte[] { 0xEF, 0xBB, 0xBF })) span = span[3..];
        return System.Text.Encoding.UTF8.GetString(span);
    }

    /// <summary>
    /// Files under <paramref name="folder"/> (paths relative to it, '/'-separated, links to files included), found
    /// without entering linked folders (no loops, nothing outside) and at most <paramref name="maxDepth"/> folders deep;
    /// more than <paramref name="maxEntries"/> entries is an error rather than an endless walk.
    /// </summary>
    public static IReadOnlyList<string> FilesUnder(string folder, int maxEntries, Func<string, Exception> error, int maxDepth = 8)
    {
        if (!Directory.Exists(folder)) return Array.Empty<string>();
        string root = Path.GetFullPath(folder);
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0, IgnoreInaccessible = true, ReturnSpecialDirectories = false };
        var walk = new FileSystemEnumerable<(string Path, bool IsFolder)>(root, (ref FileSystemEntry e) => (e.ToFullPath(), e.IsDirectory), options)
        {
            // A link to a folder is listed (as a folder) but never entered: no loops, nothing outside the folder.
            ShouldRecursePredicate = (ref FileSystemEntry e) =>
                (e.Attributes & FileAttributes.ReparsePoint) == 0 && Depth(root, e.ToFullPath()) < maxDepth,
        };
        var files = new List<string>();
        int entries = 0;
        foreach (var (path, isFolder) in walk)
        {
            if (++entries > maxEntries) throw error($"{folder}: holds more than {maxEntries:N0} entries; refusing to walk it.");
            if (!isFolder) files.Add(Path.GetRelativePath(root, path).Replace(Path.DirectorySeparatorChar, '/'));
        }
        files.Sort(StringComparer.Ordinal);
        return files;
    }

    static int Depth(string root, string path) => Path.GetRelativePath(root, path).Count(c => c == Path.DirectorySeparatorChar) + 1;
}
