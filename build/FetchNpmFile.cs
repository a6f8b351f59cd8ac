#nullable enable
// MSBuild inline task (RoslynCodeTaskFactory, compiled for netstandard2.0): gets one file out of an npm package
// tarball. The tarball is downloaded once into a cache folder (like NuGet's package cache), checked against the
// sha512 integrity the npm registry publishes for it, and the one entry is extracted. Offline with a cached,
// verified tarball it works; offline without one it fails with a message that says what to do.
using System;
using System.IO;
using System.IO.Compression;
using System.Net.Http;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class FetchNpmFile : Task
{
    /// <summary>The tarball's URL on the npm registry.</summary>
    [Required] public string Url { get; set; } = "";
    /// <summary>npm's "dist.integrity": "sha512-" + base64 of the tarball's SHA-512.</summary>
    [Required] public string Integrity { get; set; } = "";
    /// <summary>Where the verified tarball is kept between builds.</summary>
    [Required] public string CacheFile { get; set; } = "";
    /// <summary>The path inside the tarball, e.g. "package/plotly.min.js".</summary>
    [Required] public string Entry { get; set; } = "";
    /// <summary>Where the entry is written.</summary>
    [Required] public string Destination { get; set; } = "";

    public override bool Execute()
    {
        try
        {
            string expected = Integrity.StartsWith("sha512-", StringComparison.Ordinal)
                ? Integrity.Substring("sha512-".Length)
                : throw new InvalidDataException($"Integrity '{Integrity}' is not of the form sha512-<base64>.");
            byte[] tarball = Cached(expected) ?? Download(expected);
            if (tarball.Length == 0) return false;
            byte[] entry = ExtractEntry(tarball, Entry)
                ?? throw new InvalidDataException($"The package {Url} has no entry '{Entry}'.");
            Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(Destination))!);
            if (!File.Exists(Destination) || !SameBytes(File.ReadAllBytes(Destination), entry))
            {
                string tmp = Destination + ".tmp";
                File.WriteAllBytes(tmp, entry);
                if (File.Exists(Destination)) File.Delete(Destination);
                File.Move(tmp, Destination);
            }
            return true;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Log.LogError($"{e.Message}");
            return false;
        }
    }

    byte[]? Cached(string expected)
    {
        if (!File.Exists(CacheFile)) return null;
        byte[] bytes = File.ReadAllBytes(CacheFile);
        if (Hash(bytes) == expected) return bytes;
        Log.LogMessage(MessageImportance.High, $"The cached {CacheFile} does not match its published sha512; downloading it again.");
        return null;
    }

    byte[] Download(string expected)
    {
        byte[] bytes;
        try
        {
            Log.LogMessage(MessageImportance.High, $"Downloading {Url} once into {CacheFile} (plotly.js for the workbook's figures).");
            using var client = new HttpClient { Timeout = TimeSpan.FromMinutes(5) };
            bytes = client.GetByteArrayAsync(Url).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException)
        {
            Log.LogError(
                $"Could not download {Url} ({e.GetBaseException().Message}), and it is not in the cache ({CacheFile}). " +
                "The workbook embeds plotly.js (npm package, MIT licence) so that its figures draw offline; the first build needs the npm registry once. " +
                $"Connect and build again, or put that tarball at {CacheFile} (its sha512 must be {Integrity}).");
            return Array.Empty<byte>();
        }
        string actual = Hash(bytes);
        if (actual != expected)
        {
            Log.LogError($"The download of {Url} does not match its published integrity: expected sha512-{expected}, got sha512-{actual}. Nothing was cached.");
            return Array.Empty<byte>();
        }
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(CacheFile))!);
        string tmp = CacheFile + "." + Guid.NewGuid().ToString("N") + ".tmp";
        File.WriteAllBytes(tmp, bytes);
        if (File.Exists(CacheFile)) File.Delete(CacheFile);
        File.Move(tmp, CacheFile);
        return bytes;
    }

    static string Hash(byte[] bytes)
    {
        using var sha = SHA512.Create();
        return Convert.ToBase64String(sha.ComputeHash(bytes));
    }

    static bool SameBytes(byte[] a, byte[] b)
    {
        if (a.Length != b.Length) return false;
        for (int i = 0; i < a.Length; i++) if (a[i] != b[i]) return false;
        return true;
    }

    /// <summary>Reads a gzip-compressed ustar archive and returns the bytes of one regular file.</summary>
    static byte[]? ExtractEntry(byte[] tgz, string wanted)
    {
        using var gzip = new GZipStream(new MemoryStream(tgz), CompressionMode.Decompress);
        using var tar = new MemoryStream();
        gzip.CopyTo(tar);
        byte[] data = tar.ToArray();
        int offset = 0;
        string? longName = null;
        while (offset + 512 <= data.Length)
        {
            if (IsZero(data, offset, 512)) break;
            string name = Text(data, offset, 100);
            long size = Octal(data, offset + 124, 12);
            char type = (char)data[offset + 156];
            string prefix = Text(data, offset + 345, 155);
            if (prefix.Length > 0) name = prefix + "/" + name;
            if (longName != null) { name = longName; longName = null; }
            int body = offset + 512;
            if (body + size > data.Length) throw new InvalidDataException("The npm tarball is truncated.");
            if (type == 'L') longName = Encoding.UTF8.GetString(data, body, (int)size).TrimEnd('\0');
            else if ((type == '0' || type == '\0') && name == wanted)
            {
                byte[] result = new byte[size];
                Array.Copy(data, body, result, 0, size);
                return result;
            }
            offset = body + (int)((size + 511) / 512 * 512);
        }
        return null;
    }

    static bool IsZero(byte[] data, int offset, int count)
    {
        for (int i = 0; i < count; i++) if (data[offset + i] != 0) return false;
        return true;
    }

    static string Text(byte[] data, int offset, int count)
    {
        int end = offset;
        while (end < offset + count && data[end] != 0) end++;
        return Encoding.UTF8.GetString(data, offset, end - offset);
    }

    static long Octal(byte[] data, int offset, int count)
    {
        string s = Text(data, offset, count).Trim(' ', '\0');
        long v = 0;
        foreach (char c in s)
        {
            if (c < '0' || c > '7') throw new InvalidDataException($"Bad size field '{s}' in the npm tarball.");
            v = v * 8 + (c - '0');
        }
        return v;
    }
}
