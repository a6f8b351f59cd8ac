using Workbook.Checkpoints;
using Workbook.Circuits;
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

    static readonly EmbeddedCheckpoint Checkpoint = new(Alias,
        new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "circuit.json", "circuit-edges.json", "evaluation.json", "README.md" },
        "train-toy-ioi");
    static readonly Lazy<WordLevelTokenizer> TokenizerLazy = new(() => WordLevelTokenizer.Load(Path.Combine(Checkpoint.Folder, "tokenizer.json"), name: Alias));
    static readonly Lazy<IReadOnlyList<IoiCircuitHead>> CircuitLazy = new(() => Checkpoint.ReadJson<List<IoiCircuitHead>>("circuit.json", ToyIoiBuild.Json));

    /// <summary>Whether the checkpoint was built into this library (it is, unless the repository was built before training it).</summary>
    public static bool IsAvailable => Checkpoint.IsAvailable;

    /// <summary>A folder holding the checkpoint (config.json, model.safetensors, tokenizer.json, ...), extracted from the library once per version.</summary>
    public static string CheckpointFolder => Checkpoint.Folder;

    /// <summary>Loads the model on <paramref name="device"/> (CPU by default) with parameters in <paramref name="dtype"/>.</summary>
    public static HookedTransformer Load(Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        HuggingFaceCheckpoint.Load(Checkpoint.Folder, ConfigJson.Load(Path.Combine(Checkpoint.Folder, "config.json")), device ?? CPU, dtype, Alias);

    /// <summary>The model's word-level tokenizer (BOS = &lt;|endoftext|&gt;, id 0, never added implicitly).</summary>
    public static WordLevelTokenizer Tokenizer => TokenizerLazy.Value;

    /// <summary>The heads that matter, each with the IOI position it acts at (from the model card).</summary>
    public static IReadOnlyList<IoiCircuitHead> Circuit => CircuitLazy.Value;

    /// <summary>The edge circuit (circuit-edges.json): pruned by discovery from the edges the node circuit induces (see the model card).</summary>
    public static SymbolicCircuit EdgeCircuit => ToyCircuitFiles.Read(Checkpoint, Patching.Component.Edge);

    /// <summary>The numbers of the model card: held-out accuracy, logit difference, head effects.</summary>
    public static ToyIoiReport Evaluation => Checkpoint.ReadJson<ToyIoiReport>("evaluation.json", ToyIoiBuild.Json);

    /// <summary>Clean/ABC prompt pairs in the model's vocabulary, with their IO, S1, S1+1, S2 and end positions.</summary>
    public static IReadOnlyList<IoiPromptPair> Prompts(int count, ulong seed, int? template = null, IoiNameOrder? order = null) =>
        IoiSentences.Generate(Tokenizer, count, seed, template, order);
}
