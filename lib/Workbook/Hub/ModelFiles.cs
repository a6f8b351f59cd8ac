using System.Text.Json;

namespace Workbook.Hub;

/// <summary>
/// Which files of a repository a model needs: <c>config.json</c>; the weights (<c>model.safetensors</c>, or
/// <c>model.safetensors.index.json</c> and its shards, else <c>pytorch_model.bin</c> (or its index and shards),
/// else a TransformerLens <c>*final.pth</c>); and the tokenizer files when the repository has them.
/// The same rules pick files from a hub listing and check a cached snapshot.
/// </summary>
public static class ModelFiles
{
    public const string Config = "config.json";
    public const string SafetensorsSingle = "model.safetensors";
    public const string SafetensorsIndex = "model.safetensors.index.json";
    public const string PytorchSingle = "pytorch_model.bin";
    public const string PytorchIndex = "pytorch_model.bin.index.json";

    /// <summary>Tokenizer files fetched when present (only <c>tokenizer.json</c> is needed to tokenize).</summary>
    public static readonly IReadOnlyList<string> TokenizerFiles = new[] { "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json" };

    /// <summary>How the weights expected in a folder are described in messages.</summary>
    public const string WeightsDescription = "model.safetensors, model.safetensors.index.json, pytorch_model.bin, pytorch_model.bin.index.json or a TransformerLens *final.pth";

    /// <summary>The weights entry file among <paramref name="files"/>, in order of preference; null when there is none.</summary>
    public static string? ChooseWeights(IReadOnlyCollection<string> files)
    {
        foreach (var f in new[] { SafetensorsSingle, SafetensorsIndex, PytorchSingle, PytorchIndex })
            if (files.Contains(f)) return f;
        // TransformerLens picks the first repository file ending in "final.pth"; prefer one at the top level.
        return files.Where(f => f.EndsWith("final.pth", StringComparison.Ordinal))
            .OrderBy(f => f.Contains('/') ? 1 : 0).ThenBy(f => f, StringComparer.Ordinal).FirstOrDefault();
    }

    public static bool IsIndex(string weightsFile) => weightsFile.EndsWith(".index.json", StringComparison.Ordinal);

    /// <summary>The shard files an index lists (<c>weight_map</c> values), validated as plain file names.</summary>
    public static IReadOnlyList<string> ShardsOf(string indexPath)
    {
        using var doc = Util.JsonInput.ReadFile(indexPath, (m, e) => new HubException(m, e), maxBytes: Util.JsonInput.MaxSmallFileBytes);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new HubException($"{indexPath}: missing object 'weight_map'.");
        var shards = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var p in map.EnumerateObject())
        {
            string? file = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString() : null;
            if (string.IsNullOrEmpty(file) || file.Contains('/') || file.Contains('\\') || file.Contains(".."))
                throw new HubException($"{indexPath}: weight_map entry '{p.Name}' must name a shard file in the same folder.");
            shards.Add(file);
        }
        return shards.ToList();
    }

    /// <summary>The TransformerLens <c>tokenizer_name</c> in a <c>config.json</c>, when it names another hub repository.</summary>
    public static RepoId? TokenizerRepoOf(string configPath)
    {
        try
        {
            using var doc = Util.JsonInput.ReadFile(configPath, (m, e) => new HubException(m, e), maxBytes: Util.JsonInput.MaxSmallFileBytes);
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("tokenizer_name", out var t)
                && t.ValueKind == JsonValueKind.String && RepoId.TryParse(t.GetString()!, out var id))
                return id;
        }
        catch (HubException)
        {
            // The loader reports a broken or unreadable config.json with its own message.
        }
        return null;
    }

    /// <summary>
    /// Checks that a folder holds everything to load the model; returns the first missing file (with what it is
    /// needed for), or null when complete.
    /// </summary>
    public static string? FirstMissing(string folder)
    {
        if (Util.FileSystemEntries.TargetKindOf(Path.Combine(folder, Config)) != Util.EntryKind.RegularFile) return Config;
        var files = Util.SafeRead.FilesUnder(folder, HubCache.MaxWalkEntries, m => new HubException(m))
            .Where(f => Util.FileSystemEntries.TargetKindOf(Path.Combine(folder, f)) == Util.EntryKind.RegularFile) // a dangling link, FIFO or loop is no file
            .ToHashSet(StringComparer.Ordinal);
        string? weights = ChooseWeights(files);
        if (weights == null) return $"the weights ({WeightsDescription})";
        if (IsIndex(weights))
            foreach (var shard in ShardsOf(Path.Combine(folder, weights)))
                if (!files.Contains(shard)) return $"{shard} (a shard listed in {weights})";
        return null;
    }
}
