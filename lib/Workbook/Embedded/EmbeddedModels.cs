using Workbook.Model;
using Workbook.Tokenization;
using Workbook.Util;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>A model that ships with the library: nothing to download, known by an alias.</summary>
public sealed class EmbeddedModel
{
    readonly Lazy<TransformerConfig> _config;
    readonly Func<Device, ScalarType, HookedTransformer> _build;
    readonly Func<ITokenizer> _tokenizer;

    public EmbeddedModel(string alias, string description, string task, Func<TransformerConfig> config, Func<Device, ScalarType, HookedTransformer> build,
        Func<ITokenizer> tokenizer, IReadOnlyList<string>? outputLabels = null)
    {
        OutputLabels = outputLabels;
        Alias = alias;
        Description = description;
        Task = task;
        _config = new Lazy<TransformerConfig>(config);
        _build = build;
        _tokenizer = tokenizer;
    }

    /// <summary>The name used on the command line and in code (<c>--model tracr-reverse</c>).</summary>
    public string Alias { get; }
    /// <summary>One line for listings.</summary>
    public string Description { get; }
    /// <summary>The task it is meant for, by the tasks' names (<c>ioi</c>, <c>tracr-reverse</c>, <c>tracr-xproportion</c>).</summary>
    public string Task { get; }
    public TransformerConfig Config => _config.Value;
    /// <summary>Names of the output dimensions when they are not the tokenizer's tokens (Tracr models), else null.</summary>
    public IReadOnlyList<string>? OutputLabels { get; }
    public ITokenizer Tokenizer => _tokenizer();

    /// <summary>Builds or loads the model on <paramref name="device"/> with parameters in <paramref name="dtype"/> (float32 by default).</summary>
    public HookedTransformer Load(Device? device = null, ScalarType dtype = ScalarType.Float32) => _build(device ?? CPU, dtype);

    public override string ToString() => Alias;
}

/// <summary>
/// The models that need no download: the compiled Tracr models (built from their weights in code) and the toy IOI
/// model (trained by this repository, built into the library). Model loading consults this registry first, so
/// <c>--model toy-ioi</c> works wherever a checkpoint folder does.
/// </summary>
public static class EmbeddedModels
{
    public static readonly IReadOnlyList<EmbeddedModel> All = new[]
    {
        new EmbeddedModel(TracrXProportion.Alias,
            "Tracr-compiled frac_prevs(tokens == x): running fraction of x (2 layers, 1 head, d_model 14)",
            "tracr-xproportion", () => TracrXProportion.Config, (d, t) => TracrXProportion.Build(d, t), () => TracrXProportion.Tokenizer,
            new[] { "frac_prevs" }),
        new EmbeddedModel(TracrReverse.Alias,
            "Tracr-compiled reverse over {1, 2, 3} (4 layers, 1 head, d_model 41)",
            "tracr-reverse", () => TracrReverse.Config, (d, t) => TracrReverse.Build(d, t), () => TracrReverse.Tokenizer,
            TracrReverse.OutputSymbols),
        new EmbeddedModel(ToyIoi.Alias,
            "Small GPT-2-style model trained in this repository on IOI sentences (word-level vocabulary)",
            "ioi", ToyIoiConfig, (d, t) => ToyIoi.Load(d, t), () => ToyIoi.Tokenizer),
    };

    public static IEnumerable<string> Aliases => All.Select(m => m.Alias);

    /// <summary>The embedded model called <paramref name="alias"/> (case-insensitive), or null.</summary>
    public static EmbeddedModel? Find(string alias) =>
        All.FirstOrDefault(m => string.Equals(m.Alias, alias, StringComparison.OrdinalIgnoreCase));

    /// <summary>The embedded model called <paramref name="alias"/>; an unknown alias is an error listing the known ones.</summary>
    public static EmbeddedModel Get(string alias) => Find(alias)
        ?? throw new KeyNotFoundException($"No embedded model '{alias}'.{NearestNames.DidYouMean(alias, Aliases)} Embedded models: {string.Join(", ", Aliases)}.");

    /// <summary>Loads the embedded model <paramref name="alias"/> on <paramref name="device"/>, or returns false when there is none by that name.</summary>
    public static bool TryLoad(string alias, Device? device, out HookedTransformer? model, ScalarType dtype = ScalarType.Float32)
    {
        model = Find(alias)?.Load(device, dtype);
        return model != null;
    }

    /// <summary>The tokenizer of embedded model <paramref name="alias"/>, or null when there is none by that name.</summary>
    public static ITokenizer? TryGetTokenizer(string alias) => Find(alias)?.Tokenizer;

    static TransformerConfig ToyIoiConfig()
    {
        // The config is known without loading weights only when the checkpoint is built in.
        if (!ToyIoi.IsAvailable) return ToyIoiTrainer.ModelConfig(new ToyIoiTrainingOptions(), ToyIoiTrainer.BuildTokenizer().VocabSize);
        var json = Checkpoints.ConfigJson.Load(Path.Combine(ToyIoi.CheckpointFolder, "config.json"));
        return Checkpoints.HuggingFaceCheckpoint.ReadConfig(json, ToyIoi.Alias);
    }
}
