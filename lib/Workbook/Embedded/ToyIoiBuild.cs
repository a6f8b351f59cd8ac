using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Workbook.Checkpoints;
using Workbook.Model;
using Workbook.Tokenization;

namespace Workbook.Embedded;

/// <summary>What a toy IOI training run measured; saved as <c>evaluation.json</c> next to the checkpoint and shown in its card.</summary>
public sealed record ToyIoiReport
{
    public required ToyIoiTrainingOptions Options { get; init; }
    public required double TrainingSeconds { get; init; }
    public required int Parameters { get; init; }
    public required ulong EvaluationSeed { get; init; }
    public required IoiScore HeldOut { get; init; }
    /// <summary>Same prompts with every head output mean-ablated (ABC mean): what the model does with no head.</summary>
    public required IoiScore AllHeadsAblated { get; init; }
    public required IReadOnlyList<HeadEffect> Heads { get; init; }
    public required IReadOnlyList<IoiCircuitHead> Circuit { get; init; }
    /// <summary>The circuit alone (every other head output mean-ablated): its score on the held-out prompts.</summary>
    public required IoiScore CircuitOnly { get; init; }
    /// <summary>Heads whose mean ablation drops the mean logit difference by at least this fraction of the clean value join the circuit.</summary>
    public required double CircuitThreshold { get; init; }
}

/// <summary>
/// Builds the toy IOI checkpoint folder: trains the model, evaluates it on held-out prompts, finds the heads that
/// matter, and writes a HuggingFace folder (config.json, model.safetensors, tokenizer.json, tokenizer_config.json)
/// plus circuit.json, evaluation.json and a model card (README.md). Files appear only when all are written.
/// </summary>
public static class ToyIoiBuild
{
    /// <summary>Seed of the held-out prompts the card reports (training uses a stream derived from the training seed).</summary>
    public const ulong EvaluationSeed = 7_000_001;
    public const int EvaluationPrompts = 3000;
    public const double CircuitThreshold = 0.04;
    /// <summary>The head analysis uses the first this-many held-out prompts (each head is ablated 7 ways).</summary>
    public const int HeadAnalysisPrompts = 600;

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static ToyIoiReport TrainAndSave(string folder, ToyIoiTrainingOptions options, IProgress<string>? log = null, CancellationToken cancel = default)
    {
        var tokenizer = ToyIoiTrainer.BuildTokenizer();
        var clock = Stopwatch.StartNew();
        var progress = log == null ? null : new SyncProgress<ToyIoiTrainingProgress>(p =>
            log.Report($"step {p.Step,5}/{p.Steps}  loss {p.Loss:F4}  answer loss {p.AnswerLoss:F4}  {p.Elapsed.TotalSeconds:F0} s"));
        using var model = ToyIoiTrainer.Train(options, tokenizer, progress, cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        log?.Report($"trained in {seconds:F0} s; evaluating on {EvaluationPrompts} held-out prompts (seed {EvaluationSeed})");
        var report = Analyse(model, tokenizer, options, seconds, log);
        Save(model, tokenizer, report, folder);
        log?.Report($"wrote {folder}");
        return report;
    }

    /// <summary>
    /// Recomputes the analysis of the checkpoint in <paramref name="folder"/> (for example after changing the analysis
    /// code) and rewrites its circuit.json, evaluation.json and README.md; the weights are not touched.
    /// </summary>
    public static ToyIoiReport Reanalyse(string folder, IProgress<string>? log = null)
    {
        string evaluation = Path.Combine(folder, "evaluation.json");
        var previous = Util.JsonInput.Deserialize<ToyIoiReport>(File.ReadAllText(evaluation), evaluation, Json);
        var tokenizer = WordLevelTokenizer.Load(Path.Combine(folder, "tokenizer.json"));
        using var model = ModelLoader.Load(folder);
        var report = Analyse(model, tokenizer, previous.Options, previous.TrainingSeconds, log);
        long bytes = new FileInfo(Path.Combine(folder, "model.safetensors")).Length;
        AtomicTextFile.WriteAllText(Path.Combine(folder, "circuit.json"), JsonSerializer.Serialize(report.Circuit, Json) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "evaluation.json"), JsonSerializer.Serialize(report, Json) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "README.md"), ToyIoiModelCard.Render(report, model.Config, tokenizer.VocabSize, bytes));
        return report;
    }

    /// <summary>Evaluation, head effects and the circuit of a trained model.</summary>
    public static ToyIoiReport Analyse(HookedTransformer model, ITokenizer tokenizer, ToyIoiTrainingOptions options, double trainingSeconds, IProgress<string>? log = null)
    {
        var prompts = IoiSentences.Generate(tokenizer, EvaluationPrompts, EvaluationSeed);
        var clean = ToyIoiAnalysis.Evaluate(model, prompts);
        log?.Report($"held-out: accuracy {clean.Accuracy:P1}, logit(IO) > logit(S) {clean.IoAboveSubject:P1}, mean logit diff {clean.MeanLogitDiff:F3}");
        int H = model.Config.NHeads;
        var none = ToyIoiAnalysis.Evaluate(model, prompts, (l, T, _) => TorchSharp.torch.ones(T, H, dtype: TorchSharp.torch.ScalarType.Bool));
        log?.Report($"every head mean-ablated: mean logit diff {none.MeanLogitDiff:F3}");
        var heads = ToyIoiAnalysis.HeadEffects(model, prompts.Take(HeadAnalysisPrompts).ToList(), log);
        var circuit = heads
            .Where(h => h.ActsAt != null && Math.Abs(h.AllPositions) >= CircuitThreshold * Math.Abs(clean.MeanLogitDiff))
            .Select(h => new IoiCircuitHead(h.Layer, h.Head, h.ActsAt!.Value)).ToList();
        var circuitOnly = ToyIoiAnalysis.Evaluate(model, prompts, ToyIoiAnalysis.KeepOnly(circuit, H));
        log?.Report($"circuit: {string.Join(", ", circuit.Select(c => $"{c.Name}@{c.Position}"))}; alone: mean logit diff {circuitOnly.MeanLogitDiff:F3}");
        return new ToyIoiReport
        {
            Options = options,
            TrainingSeconds = Math.Round(trainingSeconds, 1),
            Parameters = (int)model.parameters().Sum(p => p.numel()),
            EvaluationSeed = EvaluationSeed,
            HeldOut = clean,
            AllHeadsAblated = none,
            Heads = heads,
            Circuit = circuit,
            CircuitOnly = circuitOnly,
            CircuitThreshold = CircuitThreshold,
        };
    }

    static void Save(HookedTransformer model, WordLevelTokenizer tokenizer, ToyIoiReport report, string folder)
    {
        string full = Path.GetFullPath(folder);
        string parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        string staging = Path.Combine(parent, $".{Path.GetFileName(full)}.{Guid.NewGuid():N}.tmp");
        try
        {
            Gpt2CheckpointWriter.Save(model, staging, new Dictionary<string, JsonNode?> { ["eos_token_id"] = 0 });
            AtomicTextFile.WriteAllText(Path.Combine(staging, "tokenizer.json"), tokenizer.ToJson() + "\n");
            AtomicTextFile.WriteAllText(Path.Combine(staging, "tokenizer_config.json"), new JsonObject
            {
                ["tokenizer_class"] = "PreTrainedTokenizerFast",
                ["bos_token"] = ToyIoiTrainer.EndOfText,
                ["eos_token"] = ToyIoiTrainer.EndOfText,
                ["unk_token"] = ToyIoiTrainer.Unknown,
                ["add_bos_token"] = false,
                ["model_max_length"] = model.Config.NCtx,
            }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
            AtomicTextFile.WriteAllText(Path.Combine(staging, "circuit.json"), JsonSerializer.Serialize(report.Circuit, Json) + "\n");
            AtomicTextFile.WriteAllText(Path.Combine(staging, "evaluation.json"), JsonSerializer.Serialize(report, Json) + "\n");
            long bytes = new FileInfo(Path.Combine(staging, "model.safetensors")).Length;
            AtomicTextFile.WriteAllText(Path.Combine(staging, "README.md"), ToyIoiModelCard.Render(report, model.Config, tokenizer.VocabSize, bytes));
            // Swap the finished folder in: the old one is moved aside first and removed only afterwards.
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

    /// <summary>Reports synchronously on the calling thread (System.Progress posts to the thread pool, which would reorder lines).</summary>
    internal sealed class SyncProgress<T>(Action<T> report) : IProgress<T>
    {
        public void Report(T value) => report(value);
    }
}

/// <summary>Renders the toy IOI model card from a training report.</summary>
public static class ToyIoiModelCard
{
    static string F(double x, string format = "F3") => x.ToString(format, CultureInfo.InvariantCulture);
    static string P(double x) => (100 * x).ToString("F1", CultureInfo.InvariantCulture) + "%";

    public static string Label(IoiPosition? p) => p switch
    {
        IoiPosition.IndirectObject => "IO",
        IoiPosition.Subject1 => "S1",
        IoiPosition.Subject1Plus1 => "S1+1",
        IoiPosition.Subject2 => "S2",
        IoiPosition.End => "end",
        _ => "other",
    };

    public static string Render(ToyIoiReport r, TransformerConfig c, int vocab, long checkpointBytes)
    {
        var o = r.Options;
        var sb = new StringBuilder();
        sb.AppendLine("# toy-ioi: a small GPT-2-style model trained on IOI sentences");
        sb.AppendLine();
        sb.AppendLine("Trained by this repository on a CPU in minutes, so that every analysis of the workbook runs with nothing");
        sb.AppendLine("downloaded. It completes sentences of the Indirect Object Identification task (Wang et al., 2022) —");
        sb.AppendLine("\"Then, Mary and John went to the store. John gave a drink to\" → \"Mary\" — with a word-level vocabulary of its own.");
        sb.AppendLine("This file is generated by the training command; do not edit it by hand.");
        sb.AppendLine();
        sb.AppendLine("## Retrain");
        sb.AppendLine();
        sb.AppendLine("```bash");
        sb.AppendLine("dotnet run --project lib/Workbook.Cli -- train-toy-ioi --out data/models/toy-ioi");
        sb.AppendLine("```");
        sb.AppendLine();
        sb.AppendLine($"Seed {o.Seed}, {o.Steps} steps of batch {o.BatchSize}, AdamW (peak learning rate {F(o.LearningRate, "G3")}, {o.WarmupSteps} warm-up steps, cosine decay to a tenth,");
        sb.AppendLine($"weight decay {F(o.WeightDecay, "G3")} on matrices, gradient norm clipped at 1), {o.Threads} CPU thread(s). Training took {F(r.TrainingSeconds, "F0")} s");
        sb.AppendLine("on the 2-core development machine. With the same seed and thread count the run is deterministic (a test retrains a few");
        sb.AppendLine("steps twice and compares the weights bit for bit); other CPUs or libtorch builds may round differently.");
        sb.AppendLine();
        sb.AppendLine("## Model");
        sb.AppendLine();
        sb.AppendLine($"GPT-2 architecture (pre-LayerNorm, gelu_new, learned positions, tied unembedding, no dropout): {c.NLayers} layers,");
        sb.AppendLine($"d_model {c.DModel}, {c.NHeads} heads of {c.DHead}, MLP {c.DMlp}, context {c.NCtx}, vocabulary {vocab}; {r.Parameters:N0} parameters,");
        sb.AppendLine($"`model.safetensors` {checkpointBytes:N0} bytes (float32). Files: `config.json` (model_type gpt2) and `model.safetensors`");
        sb.AppendLine("(GPT-2 tensor names) as on the HuggingFace hub; `tokenizer.json` (WordLevel model, Whitespace pre-tokenizer) and");
        sb.AppendLine("`tokenizer_config.json`; `circuit.json` (the heads below); `evaluation.json` (every number in this card).");
        sb.AppendLine();
        sb.AppendLine("Tokenizer: one token per word or punctuation run (`\\w+|[^\\w\\s]+`). Id 0 is `<|endoftext|>`, the BOS/EOS/padding");
        sb.AppendLine("token, which is never added implicitly; id 1 is `[UNK]` (the workbook's reader rejects unknown words instead).");
        sb.AppendLine("Then the template words and punctuation, the 109 names, 8 places and 8 objects of the IOI dataset. IOI sentences");
        sb.AppendLine("tokenize as under GPT-2 (one token per word), so the paper's IOI positions apply, except template 11, whose opening");
        sb.AppendLine("\"Afterwards\" GPT-2 splits in two: there every position is one less.");
        sb.AppendLine();
        sb.AppendLine("## Training data");
        sb.AppendLine();
        sb.AppendLine("Fresh sentences every step from the IOI distribution of the paper (spec D.2): one of the 15 templates, ABBA or BABA");
        sb.AppendLine("order, two different names (IO and S) of 109, a place and an object, drawn uniformly; the full sentence ends with the");
        sb.AppendLine("indirect object. Next-token loss on every word, with the final word (the answer) weighted");
        sb.AppendLine($"{F(o.AnswerWeight, "G3")}×. No BOS is prepended, matching the paper's IOI setting. The answer is the name that occurs once among");
        sb.AppendLine("the names before the end, so the task does not depend on how prompts are corrupted later. On every IOI prompt this is");
        sb.AppendLine("also \"the name that is not the last one mentioned\" (S2 is always the most recent name), and nothing in the data tells");
        sb.AppendLine("the two rules apart; the head table below shows which one the model found.");
        sb.AppendLine();
        sb.AppendLine("## Held-out evaluation");
        sb.AppendLine();
        sb.AppendLine($"{r.HeldOut.Prompts} prompts generated with seed {r.EvaluationSeed} (`IoiSentences.Generate(tokenizer, {r.HeldOut.Prompts}, {r.EvaluationSeed})`), read at the end position:");
        sb.AppendLine();
        sb.AppendLine("| | accuracy (top-1 = IO) | logit(IO) > logit(S) | mean logit diff (IO − S) |");
        sb.AppendLine("|---|---|---|---|");
        sb.AppendLine($"| model | {P(r.HeldOut.Accuracy)} | {P(r.HeldOut.IoAboveSubject)} | {F(r.HeldOut.MeanLogitDiff)} |");
        sb.AppendLine($"| circuit below only (other heads mean-ablated) | {P(r.CircuitOnly.Accuracy)} | {P(r.CircuitOnly.IoAboveSubject)} | {F(r.CircuitOnly.MeanLogitDiff)} |");
        sb.AppendLine($"| every head mean-ablated | {P(r.AllHeadsAblated.Accuracy)} | {P(r.AllHeadsAblated.IoAboveSubject)} | {F(r.AllHeadsAblated.MeanLogitDiff)} |");
        sb.AppendLine();
        sb.AppendLine("Chance for top-1 is about 1/109 over names (the model must first learn that a name comes next); a model that picks one of");
        sb.AppendLine("the two names in the sentence at random is right half the time.");
        sb.AppendLine();
        sb.AppendLine("## Which heads matter");
        sb.AppendLine();
        sb.AppendLine("Each head's output (`blocks.{l}.attn.hook_result`) is replaced by its mean over the ABC-corrupt prompts of the same");
        sb.AppendLine("template (position by position), on all positions or on one IOI position; the table gives the drop in mean logit");
        sb.AppendLine("difference (clean − ablated; positive = the head helps). \"Acts at\" is the position where ablation matters most;");
        sb.AppendLine("\"attends to\" is where the head looks from there on clean prompts (mean attention weight; \"other\" = all");
        sb.AppendLine("unlabelled positions together).");
        sb.AppendLine();
        sb.AppendLine("| head | all positions | IO | S1 | S1+1 | S2 | end | other | acts at | attends to |");
        sb.AppendLine("|---|---|---|---|---|---|---|---|---|---|");
        foreach (var h in r.Heads.OrderByDescending(h => Math.Abs(h.AllPositions)))
            sb.AppendLine($"| {h.Name} | {F(h.AllPositions)} | {F(h.AtIndirectObject)} | {F(h.AtSubject1)} | {F(h.AtSubject1Plus1)} | {F(h.AtSubject2)} | {F(h.AtEnd)} | {F(h.AtOtherPositions)} | {Label(h.ActsAt)} | {(h.ActsAt is null ? "" : $"{Label(h.AttendsTo)} ({F(h.AttentionWeight, "F2")})")} |");
        sb.AppendLine();
        sb.AppendLine($"**Circuit** (`circuit.json`, `ToyIoi.Circuit`): the heads whose ablation at all positions moves the mean logit difference by at");
        sb.AppendLine($"least {P(r.CircuitThreshold)} of its clean value, each kept at the position it acts at:");
        sb.AppendLine($"{string.Join(", ", r.Circuit.Select(c => $"`{c.Name}` @ {Label(c.Position)}"))}.");
        sb.AppendLine("With every other head output mean-ablated (and these heads at other positions), the circuit keeps");
        sb.AppendLine($"{P(r.CircuitOnly.MeanLogitDiff / r.HeldOut.MeanLogitDiff)} of the model's mean logit difference (ratio of means).");
        return sb.ToString();
    }
}
