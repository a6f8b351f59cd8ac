using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tokenization;
using static TorchSharp.torch;

namespace Workbook.Embedded;

/// <summary>
/// The toy Docstring model: a 3-layer attention-only transformer trained by this repository on the Docstring task's
/// prompts (<see cref="ToyDocstringTrainer"/>), committed under <c>data/models/toy-docstring/</c> as a TransformerLens
/// folder and built into the library. Its word-level tokenizer cuts text as GPT-2-style tokenizers do, so the task's
/// labelled positions (A_def, B_def, ..., param_3) are those of attn-only-4l. Its node and edge circuits were found
/// by discovery (see the model card, <c>data/models/toy-docstring/README.md</c>).
/// </summary>
public static class ToyDocstring
{
    public const string Alias = "toy-docstring";

    internal static readonly EmbeddedCheckpoint Checkpoint = new(Alias, ToyCircuitFiles.ModelFiles, $"train-toy {Alias}");
    static readonly Lazy<WordLevelTokenizer> TokenizerLazy = new(() => WordLevelTokenizer.Load(Path.Combine(Checkpoint.Folder, "tokenizer.json"), name: Alias));

    public static bool IsAvailable => Checkpoint.IsAvailable;

    /// <summary>A folder holding the checkpoint, extracted from the library once per version.</summary>
    public static string CheckpointFolder => Checkpoint.Folder;

    public static HookedTransformer Load(Device? device = null, ScalarType dtype = ScalarType.Float32) =>
        TransformerLensCheckpoint.Load(Checkpoint.Folder, ConfigJson.Load(Path.Combine(Checkpoint.Folder, "config.json")), device ?? CPU, dtype, Alias);

    /// <summary>The model's tokenizer (BOS = &lt;|endoftext|&gt;, id 0, never added implicitly).</summary>
    public static WordLevelTokenizer Tokenizer => TokenizerLazy.Value;

    /// <summary>The node circuit (heads at task positions) and the edge circuit, as the model card describes them.</summary>
    public static SymbolicCircuit NodeCircuit => ToyCircuitFiles.Read(Checkpoint, Component.Node);
    public static SymbolicCircuit EdgeCircuit => ToyCircuitFiles.Read(Checkpoint, Component.Edge);

    /// <summary>Every number of the model card.</summary>
    public static ToyModelReport Evaluation => Checkpoint.ReadJson<ToyModelReport>("evaluation.json", ToyIoiBuild.Json);
}
