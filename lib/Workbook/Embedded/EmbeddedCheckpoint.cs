using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;

namespace Workbook.Embedded;

/// <summary>
/// A checkpoint folder the repository trains and commits under <c>data/models/&lt;alias&gt;/</c> and the library embeds
/// (resources <c>Workbook.Embedded.&lt;alias&gt;/&lt;file&gt;</c>, see Workbook.csproj). On first use the files are extracted
/// once per content version into a folder under the temporary directory, which appears only complete (by rename), so
/// loaders that read folders work on it unchanged.
/// </summary>
public sealed class EmbeddedCheckpoint
{
    readonly string[] _files;
    readonly string _trainCommand;
    readonly Lazy<string> _folder;

    /// <param name="alias">The model's name (<c>toy-ioi</c>); also the folder name under <c>data/models</c>.</param>
    /// <param name="files">The files built into the library.</param>
    /// <param name="trainCommand">The CLI verb and arguments that write the folder, for the message when it is missing.</param>
    public EmbeddedCheckpoint(string alias, IReadOnlyList<string> files, string trainCommand)
    {
        Alias = alias;
        _files = files.ToArray();
        _trainCommand = trainCommand;
        _folder = new Lazy<string>(Extract);
    }

    public string Alias { get; }

    /// <summary>Where the checkpoint lives in the repository.</summary>
    public string RepositoryFolder => $"data/models/{Alias}";

    /// <summary>The files built into the library.</summary>
    public IReadOnlyList<string> Files => _files;

    string Prefix => $"Workbook.Embedded.{Alias}/";

    /// <summary>Whether the checkpoint was built into this library (it is, unless the repository was built before training it).</summary>
    public bool IsAvailable => typeof(EmbeddedCheckpoint).Assembly.GetManifestResourceInfo(Prefix + "model.safetensors") != null;

    /// <summary>A folder holding the checkpoint's files, extracted from the library once per version.</summary>
    public string Folder => _folder.Value;

    /// <summary>Deserializes one of the checkpoint's JSON files.</summary>
    public T ReadJson<T>(string file, JsonSerializerOptions options) =>
        ToyBuildLog.ReadSmallJson<T>(Path.Combine(Folder, file), options, $"{Alias}: {file}");

    string Extract()
    {
        var assembly = typeof(EmbeddedCheckpoint).Assembly;
        if (!IsAvailable)
            throw new InvalidOperationException(
                $"The {Alias} checkpoint is not built into this copy of the library. Train it with " +
                $"`dotnet run --project lib/Workbook.Cli -- {_trainCommand} --out {RepositoryFolder}` and rebuild.");
        var contents = _files.Select(f => (Name: f, Bytes: ReadResource(assembly, Prefix + f))).ToList();
        using var sha = SHA256.Create();
        foreach (var (name, bytes) in contents)
        {
            sha.TransformBlock(System.Text.Encoding.UTF8.GetBytes(name), 0, name.Length, null, 0);
            sha.TransformBlock(bytes, 0, bytes.Length, null, 0);
        }
        sha.TransformFinalBlock(Array.Empty<byte>(), 0, 0);
        string version = Convert.ToHexString(sha.Hash!)[..16].ToLowerInvariant();
        string root = Path.Combine(Path.GetTempPath(), "workbook-embedded-models");
        string folder = Path.Combine(root, $"{Alias}-{version}");
        // The temporary folder is shared with every user of the machine, and the folder's name is predictable: reuse it
        // only when it holds exactly the embedded files (anyone could have put other weights there first).
        if (HoldsExactly(folder, contents)) return folder;   // complete: folders appear only by rename
        Directory.CreateDirectory(root);
        string staging = Path.Combine(root, $".{Alias}-{version}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(staging);
            foreach (var (name, bytes) in contents)
                using (var f = Util.AtomicFile.CreateExclusive(Path.Combine(staging, name))) f.Write(bytes);
            try
            {
                Directory.Move(staging, folder);
            }
            catch (IOException) when (Util.FileSystemEntries.KindOf(folder) != Util.EntryKind.Missing)
            {
                // Another process extracted the same version first, or something else has the name: use our own copy then.
                if (HoldsExactly(folder, contents)) return folder;
                string own = Path.Combine(root, $"{Alias}-{version}-{Guid.NewGuid():N}");
                Directory.Move(staging, own);
                return own;
            }
            return folder;
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>Whether <paramref name="folder"/> is a real folder (not a link) holding regular files with exactly these contents.</summary>
    static bool HoldsExactly(string folder, IReadOnlyList<(string Name, byte[] Bytes)> contents)
    {
        if (Util.FileSystemEntries.KindOf(folder) != Util.EntryKind.Directory) return false;
        foreach (var (name, bytes) in contents)
        {
            string path = Path.Combine(folder, name);
            if (Util.FileSystemEntries.KindOf(path) != Util.EntryKind.RegularFile || new FileInfo(path).Length != bytes.Length) return false;
            if (!File.ReadAllBytes(path).AsSpan().SequenceEqual(bytes)) return false;
        }
        return true;
    }

    byte[] ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{Alias}: resource '{name}' is missing from {assembly.GetName().Name}; rebuild the library.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}

/// <summary>Writes a checkpoint folder so that it appears only complete: into a staging folder beside it, then swapped in.</summary>
public static class CheckpointFolder
{
    /// <summary>Runs <paramref name="write"/> on an empty staging folder, then replaces <paramref name="folder"/> with it (the old one is removed only afterwards).</summary>
    public static void Replace(string folder, Action<string> write)
    {
        string full = Path.GetFullPath(folder);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string staging = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Directory.CreateDirectory(staging);
            write(staging);
            string? old = null;
            if (Directory.Exists(full))
            {
                old = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.old");
                Directory.Move(full, old);
            }
            Directory.Move(staging, full);
            if (old != null) Directory.Delete(old, recursive: true);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }
}
