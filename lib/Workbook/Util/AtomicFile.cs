using System.Security.Cryptography;
using System.Text;

namespace Workbook.Util;

/// <summary>
/// Writes files so that a reader never sees half a file: the text goes to a new temporary file beside the target
/// (created exclusively, under an unpredictable name, so nothing can be planted there or followed through a link),
/// which is then renamed over the target. A rename replaces the target's directory entry, never writes through it.
/// </summary>
public static class AtomicFile
{
    public static void WriteAllText(string path, string text) => WriteAllTexts(new[] { (path, text) });

    /// <summary>
    /// Writes several files: every temporary file is written first, and only when all of them are complete are they
    /// renamed into place; an error before that leaves none of the targets changed.
    /// </summary>
    public static void WriteAllTexts(IReadOnlyList<(string Path, string Text)> files)
    {
        var temps = new List<(string Temp, string Target)>();
        try
        {
            foreach (var (path, text) in files)
            {
                string full = Path.GetFullPath(path);
                string dir = Path.GetDirectoryName(full) ?? throw new ArgumentException($"'{path}' names no file.");
                if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"The folder '{dir}' does not exist.");
                if (Directory.Exists(full)) throw new IOException($"'{path}' is a folder, not a file.");
                string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8))}.tmp");
                using var stream = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None);
                temps.Add((temp, full));
                var bytes = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false).GetBytes(text);
                stream.Write(bytes);
                stream.Flush(flushToDisk: true);
            }
            foreach (var (temp, target) in temps) File.Move(temp, target, overwrite: true);
        }
        finally
        {
            foreach (var (temp, _) in temps)
                if (File.Exists(temp)) File.Delete(temp);
        }
    }
}
