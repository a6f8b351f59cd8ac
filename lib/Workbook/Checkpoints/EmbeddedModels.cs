using Workbook.Embedded;
using Workbook.Model;
using Workbook.Tokenization;

namespace Workbook.Checkpoints;

/// <summary>A model the workbook builds or ships itself (no download), known by a short name.</summary>
/// <param name="Name">The name used with <c>--model</c> and <see cref="ModelLoader.Load"/>.</param>
/// <param name="Description">One line for listings.</param>
/// <param name="Create">Builds the model with its weights on the requested device and dtype.</param>
/// <param name="CreateTokenizer">Its tokenizer, when it has one.</param>
/// <param name="Task">The task it is meant for, by the task's name (<c>ioi</c>, <c>tracr-reverse</c>, <c>tracr-xproportion</c>).</param>
/// <param name="OutputLabels">Names of the output dimensions when they are not the tokenizer's tokens (Tracr models).</param>
public sealed record EmbeddedModel(string Name, string Description, Func<LoadOptions, HookedTransformer> Create, Func<ITokenizer>? CreateTokenizer = null,
    string? Task = null, IReadOnlyList<string>? OutputLabels = null);

/// <summary>
/// The registry of embedded models. <see cref="ModelLoader"/> consults it after checking for a folder and before
/// hub aliases and ids, so an embedded name can never be mistaken for a download.
/// <para>
/// Registration point: the compiled Tracr models and the toy models (<c>tracr-xproportion</c>, <c>tracr-reverse</c>,
/// <c>toy-ioi</c>, <c>toy-docstring</c>, <c>toy-sports</c>) belong in <see cref="BuiltIn"/>; tests and notebooks may add their own with <see cref="Register"/>.
/// </para>
/// </summary>
public static class EmbeddedModels
{
    /// <summary>Models registered at start-up: the compiled Tracr models and the toy IOI, Docstring and Sports models (see <c>lib/Workbook/Embedded</c>).</summary>
    static IEnumerable<EmbeddedModel> BuiltIn() => new[]
    {
        new EmbeddedModel(TracrXProportion.Alias,
            "Tracr-compiled frac_prevs(tokens == x): running fraction of x (2 layers, 1 head, d_model 14)",
            o => TracrXProportion.Build(Devices.Parse(o.Device), o.DType), () => TracrXProportion.Tokenizer,
            Task: "tracr-xproportion", OutputLabels: new[] { "frac_prevs" }),
        new EmbeddedModel(TracrReverse.Alias,
            "Tracr-compiled reverse over {1, 2, 3} (4 layers, 1 head, d_model 41)",
            o => TracrReverse.Build(Devices.Parse(o.Device), o.DType), () => TracrReverse.Tokenizer,
            Task: "tracr-reverse", OutputLabels: TracrReverse.OutputSymbols),
        new EmbeddedModel(ToyIoi.Alias,
            "3-layer GPT-2-style model trained in this repository on IOI sentences (word-level vocabulary; data/models/toy-ioi)",
            o => ToyIoi.Load(Devices.Parse(o.Device), o.DType), () => ToyIoi.Tokenizer,
            Task: "ioi"),
        new EmbeddedModel(ToyDocstring.Alias,
            "3-layer attention-only model trained in this repository on Docstring prompts (word-level vocabulary; data/models/toy-docstring)",
            o => ToyDocstring.Load(Devices.Parse(o.Device), o.DType), () => ToyDocstring.Tokenizer,
            Task: "docstring"),
        new EmbeddedModel(ToySports.Alias,
            "2-layer GPT-2-style model that memorised the sports of 240 made-up players (data/models/toy-sports)",
            o => ToySports.Load(Devices.Parse(o.Device), o.DType), () => ToySports.Tokenizer,
            Task: "toy-sports"),
    };

    static readonly Dictionary<string, EmbeddedModel> Models = BuiltIn().ToDictionary(m => m.Name, StringComparer.OrdinalIgnoreCase);
    static readonly object Lock = new();

    /// <summary>Adds (or replaces) an embedded model; disposing the returned scope removes it again (restoring one it replaced).</summary>
    public static IDisposable Register(EmbeddedModel model)
    {
        if (string.IsNullOrWhiteSpace(model.Name) || model.Name.Contains('/') || model.Name.Contains('\\'))
            throw new ArgumentException($"Embedded model name '{model.Name}' must be a plain name (no slashes), so it cannot be confused with a folder or a hub id.");
        EmbeddedModel? replaced;
        lock (Lock)
        {
            Models.TryGetValue(model.Name, out replaced);
            Models[model.Name] = model;
        }
        return new Registration(model, replaced);
    }

    sealed class Registration(EmbeddedModel model, EmbeddedModel? replaced) : IDisposable
    {
        public void Dispose()
        {
            lock (Lock)
            {
                if (!Models.TryGetValue(model.Name, out var current) || current != model) return;
                if (replaced is null) Models.Remove(model.Name);
                else Models[model.Name] = replaced;
            }
        }
    }

    public static bool TryGet(string name, out EmbeddedModel? model)
    {
        lock (Lock) return Models.TryGetValue(name, out model);
    }

    public static IReadOnlyList<EmbeddedModel> All
    {
        get { lock (Lock) return Models.Values.OrderBy(m => m.Name, StringComparer.Ordinal).ToList(); }
    }
}
