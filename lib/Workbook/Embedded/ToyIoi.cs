using System.Reflection;
using System.Security.Cryptography;
using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// The toy IOI model: a small GPT-2-style transformer trained by this repository on IOI sentences
/// (<see cref="ToyIoiTrainer"/>), committed under <c>data/models/toy-ioi/</c> and built into the library, so it
/// needs no download. Its tokenizer is word-level; its circuit (<see cref="Circuit"/>) comes from mean-ablating
/// each head (see the model card, <c>data/models/toy-ioi/README.md</c>).
/// </summary>
public static class ToyIoi
{
    public const string Alias = "toy-ioi";

    /// <summary>Where the checkpoint lives in the repository.</summary>
    public const string RepositoryFolder = "data/models/toy-ioi";

    /// <summary>The files built into the library (see Workbook.csproj).</summary>
    static readonly string[] Files = { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "circuit.json", "evaluation.json", "README.md" };

    const string ResourcePrefix = "Workbook.Embedded.toy-ioi/";

    static readonly Lazy<string> Folder = new(ExtractResources);
    static readonly Lazy<WordLevelTokenizer> TokenizerLazy = new(() => WordLevelTokenizer.Load(Path.Combine(Folder.Value, "tokenizer.json"), name: Alias));
    static readonly Lazy<IReadOnlyList<IoiCircuitHead>> CircuitLazy = new(() => ReadJson<List<IoiCircuitHead>>("circuit.json"));

    /// <summary>Whether the checkpoint was built into this library (it is, unless the repository was built before training it).</summary>
    public static bool IsAvailable => typeof(ToyIoi).Assembly.GetManifestResourceInfo(ResourcePrefix + "model.safetensors") != null;

    /// <summary>A folder holding the checkpoint (config.json, model.safetensors, tokenizer.json, ...), extracted from the library once per version.</summary>
    public static string CheckpointFolder => Folder.Value;

    /// <summary>Loads the model on <paramref name="device"/> (CPU by default) with parameters in <paramref name="dtype"/>.</summary>
    public static HookedTransformer Load(Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        HuggingFaceCheckpoint.Load(Folder.Value, ConfigJson.Load(Path.Combine(Folder.Value, "config.json")), device ?? CPU, dtype, Alias);

    /// <summary>The model's word-level tokenizer (BOS = &lt;|endoftext|&gt;, id 0, never added implicitly).</summary>
    public static WordLevelTokenizer Tokenizer => TokenizerLazy.Value;

    /// <summary>The heads that matter, each with the IOI position it acts at (from the model card).</summary>
    public static IReadOnlyList<IoiCircuitHead> Circuit => CircuitLazy.Value;

    /// <summary>The numbers of the model card: held-out accuracy, logit difference, head effects.</summary>
    public static ToyIoiReport Evaluation => ReadJson<ToyIoiReport>("evaluation.json");

    /// <summary>Clean/ABC prompt pairs in the model's vocabulary, with their IO, S1, S1+1, S2 and end positions.</summary>
    public static IReadOnlyList<IoiPromptPair> Prompts(int count, ulong seed, int? template = null, IoiNameOrder? order = null) =>
        IoiSentences.Generate(Tokenizer, count, seed, template, order);

    static T ReadJson<T>(string file) =>
        JsonSerializer.Deserialize<T>(File.ReadAllText(Path.Combine(Folder.Value, file)), ToyIoiBuild.Json)
        ?? throw new InvalidOperationException($"{Alias}: {file} is empty.");

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

    static string ExtractResources()
    {
        var assembly = typeof(ToyIoi).Assembly;
        if (!IsAvailable)
            throw new InvalidOperationException(
                $"The {Alias} checkpoint is not built into this copy of the library. Train it with " +
                $"`dotnet run --project lib/Workbook.Cli -- train-toy-ioi --out {RepositoryFolder}` and rebuild.");
        var contents = Files.Select(f => (Name: f, Bytes: ReadResource(assembly, ResourcePrefix + f))).ToList();
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

    static byte[] ReadResource(Assembly assembly, string name)
    {
        using var stream = assembly.GetManifestResourceStream(name)
            ?? throw new InvalidOperationException($"{Alias}: resource '{name}' is missing from {assembly.GetName().Name}; rebuild the library.");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }
}
