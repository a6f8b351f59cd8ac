using System.Text.Json;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>
/// The tensors of a checkpoint folder: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c>; else <c>pytorch_model.bin</c> (or its index and shards) or a TransformerLens
/// <c>*final.pth</c>, both <c>torch.save</c> files. Tensors are read one at a time so that a model is never held twice.
/// </summary>
public sealed class WeightFiles : IDisposable
{
    readonly Dictionary<string, ITensorFile> _byTensor = new(StringComparer.Ordinal);
    readonly List<ITensorFile> _files = new();

    public string Folder { get; }
    public IReadOnlyCollection<string> Names => _byTensor.Keys;

    WeightFiles(string folder) => Folder = folder;

    public static bool Exists(string folder) => EntryFile(folder) != null;

    /// <summary>The file that names the weights (see <see cref="Hub.ModelFiles.ChooseWeights"/>), or null.</summary>
    public static string? EntryFile(string folder)
    {
        if (!Directory.Exists(folder)) return null;
        // A bounded walk that never enters a linked folder: a link loop in a checkpoint folder must not hang the loader.
        var files = Util.SafeRead.FilesUnder(folder, Hub.HubCache.MaxWalkEntries, m => new CheckpointException(m)).ToHashSet(StringComparer.Ordinal);
        return Hub.ModelFiles.ChooseWeights(files);
    }

    /// <summary>A weight file must be a regular file (links followed): opening a FIFO would block, a device would never end.</summary>
    internal static void EnsureRegularFile(string path)
    {
        var kind = Util.FileSystemEntries.TargetKindOf(path);
        if (kind is Util.EntryKind.RegularFile or Util.EntryKind.Missing) return; // a missing file gets the opener's own message
        throw new CheckpointException($"{path}: is {Util.AtomicFile.Describe(kind)}, not a regular file; only regular files are read.");
    }

    static ITensorFile OpenFile(string path) =>
        path.EndsWith(".safetensors", StringComparison.Ordinal) ? SafetensorsFile.Open(path) : TorchCheckpointFile.Open(path);

    public static WeightFiles Open(string folder)
    {
        var w = new WeightFiles(folder);
        try
        {
            string entry = EntryFile(folder)
                ?? throw new CheckpointException($"{folder}: no weights ({Hub.ModelFiles.WeightsDescription}).");
            string index = System.IO.Path.Combine(folder, entry.Replace('/', System.IO.Path.DirectorySeparatorChar));
            if (!Hub.ModelFiles.IsIndex(entry))
            {
                w.Add(OpenFile(index));
            }
            else
            {
                foreach (var shard in ReadIndex(index))
                {
                    string shardPath = System.IO.Path.Combine(folder, shard.File);
                    if (!File.Exists(shardPath))
                        throw new CheckpointException($"{index}: shard '{shard.File}' (holding '{shard.FirstTensor}') is missing from {folder}.");
                    var file = OpenFile(shardPath);
                    w.Add(file);
                    foreach (var name in shard.Tensors)
                        if (!file.Entries.ContainsKey(name))
                            throw new CheckpointException($"{index}: maps tensor '{name}' to {shard.File}, which does not contain it.");
                }
            }
            return w;
        }
        catch
        {
            w.Dispose();
            throw;
        }
    }

    sealed record Shard(string File, List<string> Tensors)
    {
        public string FirstTensor => Tensors[0];
    }

    static IEnumerable<Shard> ReadIndex(string indexPath)
    {
        using (var doc = Util.JsonInput.ReadFile(indexPath, (m, e) => new CheckpointException(m, e), maxBytes: Util.JsonInput.MaxSmallFileBytes))
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw new CheckpointException($"{indexPath}: missing object 'weight_map'.");
            var shards = new Dictionary<string, Shard>(StringComparer.Ordinal);
            foreach (var p in map.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.String)
                    throw new CheckpointException($"{indexPath}: weight_map entry '{p.Name}' must name a file.");
                string file = p.Value.GetString()!;
                if (file.Contains('/') || file.Contains('\\') || file.Contains(".."))
                    throw new CheckpointException($"{indexPath}: shard name '{file}' must be a plain file name.");
                if (!shards.TryGetValue(file, out var s)) shards[file] = s = new Shard(file, new List<string>());
                s.Tensors.Add(p.Name);
            }
            return shards.Values.OrderBy(s => s.File, StringComparer.Ordinal).ToList();
        }
    }

    void Add(ITensorFile file)
    {
        _files.Add(file);
        foreach (var name in file.Entries.Keys)
        {
            if (_byTensor.TryGetValue(name, out var other))
                throw new CheckpointException($"{Folder}: tensor '{name}' appears in both {System.IO.Path.GetFileName(other.Path)} and {System.IO.Path.GetFileName(file.Path)}.");
            _byTensor[name] = file;
        }
    }

    public bool Contains(string name) => _byTensor.ContainsKey(name);

    /// <summary>Values the checkpoint's bytes hold (see <see cref="ITensorFile.StoredValues"/>), over every file.</summary>
    public double StoredValues => _files.Sum(f => f.StoredValues);

    public StoredTensor Describe(string name) => _byTensor.TryGetValue(name, out var f)
        ? f.Entries[name]
        : throw new CheckpointException($"{Folder}: checkpoint has no tensor '{name}'.");

    /// <summary>Reads one tensor in its stored dtype on the CPU; the caller owns it.</summary>
    public Tensor Read(string name) => _byTensor.TryGetValue(name, out var f)
        ? f.Read(name)
        : throw new CheckpointException($"{Folder}: checkpoint has no tensor '{name}'.");

    public void Dispose()
    {
        foreach (var f in _files) f.Dispose();
        _files.Clear();
        _byTensor.Clear();
    }
}
