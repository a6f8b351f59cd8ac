using TorchSharp;
using Workbook.Hub;
using Workbook.Model;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Checkpoints;

/// <summary>Options for loading a model.</summary>
public sealed record LoadOptions
{
    /// <summary>Compute device: "cpu", "cuda" or "cuda:N".</summary>
    public string Device { get; init; } = "cpu";
    /// <summary>
    /// Parameter dtype; checkpoints stored as float16/bfloat16 are converted tensor by tensor. Float32 is the
    /// reference; float16/bfloat16 halve memory at a cost in accuracy (see the README's Models section).
    /// </summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;
    /// <summary>Hub endpoint, cache and offline mode for aliases and hub ids; null reads the environment (<see cref="HubOptions.FromEnvironment()"/>).</summary>
    public HubOptions? Hub { get; init; }
}

public enum ModelSourceKind
{
    /// <summary>A checkpoint folder given by path.</summary>
    Folder,
    /// <summary>A model registered in <see cref="EmbeddedModels"/>.</summary>
    Embedded,
    /// <summary>A hub alias or id, found in (or downloaded into) the hub cache.</summary>
    Hub,
}

/// <summary>Where a model specification led: a folder, an embedded model, or a hub snapshot.</summary>
public sealed record ModelSource(ModelSourceKind Kind, string Spec, string? Folder, string? TokenizerFolder, EmbeddedModel? Embedded, PulledModel? Pulled)
{
    public override string ToString() => Kind switch
    {
        ModelSourceKind.Embedded => $"embedded model '{Spec}'",
        ModelSourceKind.Hub => $"{Pulled!.Repo}@{Pulled.Commit[..8]} ({Folder})",
        _ => Folder!,
    };

    /// <summary>
    /// The model's name in reports, CSV files and figures: the alias or hub id the user gave (<c>gpt2</c>), the embedded
    /// model's name, or a folder's name (<c>owner/name</c> for a snapshot folder of the hub cache); never a snapshot hash.
    /// </summary>
    public string DisplayName => Kind switch
    {
        ModelSourceKind.Hub => Pulled?.Model.Name ?? Spec,
        ModelSourceKind.Embedded => Spec,
        _ => FolderDisplayName(Folder!),
    };

    /// <summary>A folder's name, or the repository id when the folder is <c>models--owner--name/snapshots/COMMIT</c> in a hub cache.</summary>
    public static string FolderDisplayName(string folder)
    {
        var full = new DirectoryInfo(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));
        if (full.Parent is { Name: "snapshots" } snapshots && snapshots.Parent is { } repoFolder && RepoId.FromCacheFolderName(repoFolder.Name) is { } repo)
            return repo.Value;
        return full.Name;
    }
}

/// <summary>A model with its tokenizer (null when it has none; <see cref="TokenizerNote"/> says why).</summary>
public sealed class LoadedModel : IDisposable
{
    public HookedTransformer Model { get; }
    public ITokenizer? Tokenizer { get; }
    public string? TokenizerNote { get; }
    public ModelSource Source { get; }

    public LoadedModel(HookedTransformer model, ITokenizer? tokenizer, string? tokenizerNote, ModelSource source)
    {
        Model = model;
        Tokenizer = tokenizer;
        TokenizerNote = tokenizerNote;
        Source = source;
        RandomWeights = source.Folder is { } folder ? RandomWeightsInfo.Read(folder) : null;
    }

    /// <summary>The model's name for reports and figures (see <see cref="ModelSource.DisplayName"/>).</summary>
    public string DisplayName => Source.DisplayName;

    /// <summary>Set when the checkpoint is a random-weights stand-in (<see cref="RandomStandIns"/>): results on it mean nothing about the real model.</summary>
    public RandomWeightsInfo? RandomWeights { get; }

    /// <summary>The tokenizer, or an error saying why there is none.</summary>
    public ITokenizer RequireTokenizer() => Tokenizer ?? throw new InvalidOperationException(
        $"Model '{Source.Spec}' has no tokenizer: {TokenizerNote ?? "none was found"}. Give token ids instead.");

    public void Dispose() => Model.Dispose();
}

/// <summary>
/// Loads models from a specification: an existing checkpoint folder, then an embedded model name
/// (<see cref="EmbeddedModels"/>), then a hub alias (<c>gpt2</c>, <c>attn-only-4l</c>, <c>pythia-2.8b-deduped</c>) or
/// hub id (<c>owner/name</c>), which is taken from the hub cache or downloaded there on first use (unless offline).
/// </summary>
public static class ModelLoader
{
    public static HookedTransformer Load(string spec, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var source = Locate(spec, options);
        return source.Kind == ModelSourceKind.Embedded ? source.Embedded!.Create(options) : LoadFolder(source.Folder!, options, source.DisplayName);
    }

    /// <summary>Loads the model and pairs it with its tokenizer when one is available.</summary>
    public static LoadedModel LoadWithTokenizer(string spec, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var source = Locate(spec, options);
        if (source.Kind == ModelSourceKind.Embedded)
        {
            var embedded = source.Embedded!;
            var tokenizer = embedded.CreateTokenizer?.Invoke();
            return new LoadedModel(embedded.Create(options), tokenizer, tokenizer == null ? "the embedded model defines none" : null, source);
        }
        var (tok, note) = FindTokenizer(source, options);
        var model = LoadFolder(source.Folder!, options, source.DisplayName);
        return new LoadedModel(model, tok, note, source);
    }

    /// <summary>Resolves a specification to a folder (downloading a hub model when needed) or an embedded model.</summary>
    public static ModelSource Locate(string spec, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        if (string.IsNullOrWhiteSpace(spec)) throw new ArgumentException("No model given: pass a checkpoint folder, an embedded model name, or a hub alias or id.");
        Util.ControlCharacters.EnsureNone(spec, "The model");
        if (Directory.Exists(spec)) return new ModelSource(ModelSourceKind.Folder, spec, spec, null, null, null);
        if (EmbeddedModels.TryGet(spec, out var embedded)) return new ModelSource(ModelSourceKind.Embedded, spec, null, null, embedded, null);
        if (LooksLikePath(spec)) throw new CheckpointException($"Model folder '{spec}' does not exist.");
        var hubModel = HubModels.TryResolve(spec) ?? throw new ArgumentException(
            $"'{spec}' is not a folder, an embedded model ({Names(EmbeddedModels.All.Select(m => m.Name))}) or a hub alias ({Names(HubModels.Aliases.Keys)}); " +
            "hub ids have the form owner/name." + Util.NearestNames.DidYouMean(spec, EmbeddedModels.All.Select(m => m.Name).Concat(HubModels.Aliases.Keys)));
        using var hub = new ModelHub(options.Hub ?? HubOptions.FromEnvironment());
        PulledModel pulled;
        try
        {
            pulled = hub.Ensure(hubModel);
        }
        catch (HubException e) when (spec.Contains('/') && !HubModels.Aliases.ContainsKey(spec) && e is not OfflineFileMissingException)
        {
            throw new HubException($"'{spec}' is not a local folder, so it was looked up as a hub id: {e.Message}", e);
        }
        return new ModelSource(ModelSourceKind.Hub, spec, pulled.Folder, pulled.TokenizerFolder, null, pulled);
    }

    static string Names(IEnumerable<string> names)
    {
        var list = names.ToList();
        return list.Count == 0 ? "none registered" : string.Join(", ", list);
    }

    static bool LooksLikePath(string spec) =>
        Path.IsPathRooted(spec) || spec.StartsWith('.') || spec.StartsWith('~') || spec.Contains('\\') || spec.Count(c => c == '/') > 1;

    /// <summary>Loads a checkpoint folder (HuggingFace gpt2 / gpt_neox, or TransformerLens). <paramref name="name"/>: the model's name (default: <see cref="ModelSource.FolderDisplayName"/>).</summary>
    public static HookedTransformer LoadFolder(string folder, LoadOptions? options = null, string? name = null)
    {
        options ??= new LoadOptions();
        if (!Directory.Exists(folder)) throw new CheckpointException($"Model folder '{folder}' does not exist.");
        if (options.DType is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64))
            throw new ArgumentException($"dtype {options.DType} is not a floating-point type a model can run in (float32, float16, bfloat16, float64).");
        var device = Devices.Parse(options.Device);
        string configPath = Path.Combine(folder, "config.json");
        var config = ConfigJson.Load(configPath);
        name ??= ModelSource.FolderDisplayName(folder);
        if (HuggingFaceCheckpoint.Recognises(config))
            return NativeHeap.AfterLoading(HuggingFaceCheckpoint.Load(folder, config, device, options.DType, name));
        if (TransformerLensCheckpoint.Recognises(config))
            return NativeHeap.AfterLoading(TransformerLensCheckpoint.Load(folder, config, device, options.DType, name));
        throw new CheckpointException($"{configPath}: unrecognised model (expected a HuggingFace gpt2 or gpt_neox config, or a TransformerLens one).");
    }

    /// <summary>
    /// The tokenizer of a checkpoint: GPT-2's own (Microsoft.ML.Tokenizers) for GPT-2-vocabulary models; else the
    /// folder's (or the hub tokenizer repository's) <c>tokenizer.json</c>; else the repository a TransformerLens
    /// config names in <c>tokenizer_name</c> (downloaded on first use unless offline).
    /// </summary>
    static (ITokenizer?, string?) FindTokenizer(ModelSource source, LoadOptions options)
    {
        string folder = source.Folder!;
        var config = ConfigJson.Load(Path.Combine(folder, "config.json"));
        if (HuggingFaceCheckpoint.Recognises(config) && config.OptionalString("model_type") is "gpt2" or null
            && config.OptionalInt("vocab_size") == 50257 && HuggingFaceCheckpoint.ReadConfig(config, "m").Architecture == Architecture.Gpt2)
            return (new Gpt2Tokenizer(), null);
        if (source.TokenizerFolder != null) return (HuggingFaceTokenizer.Load(source.TokenizerFolder), null);
        string tokenizerJson = Path.Combine(folder, "tokenizer.json");
        if (File.Exists(tokenizerJson))
            return (WordLevelTokenizer.IsWordLevel(tokenizerJson) ? WordLevelTokenizer.Load(tokenizerJson) : HuggingFaceTokenizer.Load(folder), null);
        var repo = ModelFiles.TokenizerRepoOf(Path.Combine(folder, "config.json"));
        bool standIn = RandomWeightsInfo.Read(folder) is not null;
        if (repo != null)
        {
            using var hub = new ModelHub(options.Hub ?? HubOptions.FromEnvironment());
            // A random-weights stand-in never downloads anything: its tokenizer is used when already cached.
            if (!standIn) return (HuggingFaceTokenizer.Load(hub.EnsureTokenizer(repo)), null);
            if (hub.FindCachedTokenizer(repo) is { } cached) return (HuggingFaceTokenizer.Load(cached), null);
            return (null, $"a random-weights stand-in whose tokenizer ({repo}) is not in the hub cache; tasks run on token-id prompts of their real lengths");
        }
        if (standIn) return (null, "a random-weights stand-in without the real tokenizer; tasks run on token-id prompts of their real lengths");
        return (null, $"{folder} has no tokenizer.json and its config names no tokenizer repository");
    }
}
