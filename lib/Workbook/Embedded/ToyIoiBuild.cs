using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
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
    /// <summary>The edge circuit (circuit-edges.json): pruned from the edges the node circuit induces (see <see cref="ToyIoiBuild.DeriveEdges"/>).</summary>
    public ToyCircuitReport? EdgeCircuit { get; init; }
    public int EdgeSearchSeed { get; init; }
    public int EdgeSearchPromptsPerPart { get; init; }
    public double EdgeSearchTau { get; init; }
    /// <summary>Node and edge circuits × resample and mean (ABC) × specific and all positions, on <see cref="ToyIoiBuild.GridPromptsPerPart"/> prompts per template and order (seed 0).</summary>
    public IReadOnlyList<ToyGridEntry>? Grid { get; init; }
    public IReadOnlyList<Evaluation.FactorEffect>? Sensitivity { get; init; }
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
    /// <summary>
    /// The edge circuit search: IOI task prompts of this dataset seed, the first <see cref="EdgeSearchTemplates"/> templates of
    /// each name order with this many prompts each, and τ in points of percent.
    /// </summary>
    public const int EdgeSearchSeed = 1;
    public const int EdgeSearchPromptsPerPart = 10;
    public const int EdgeSearchTemplates = 3;
    public const double EdgeSearchTau = 2.0;
    /// <summary>The grid of the card: the IOI task's prompts of seed 0, per template and order.</summary>
    public const int GridPromptsPerPart = 10;
    /// <summary>The IOI positions the edge search decides on.</summary>
    public static readonly string[] IoiLabels = { "IO", "S1", "S1+1", "S2", "end" };

    public static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new System.Text.Json.Serialization.JsonStringEnumConverter() },
    };

    public static ToyIoiReport TrainAndSave(string folder, ToyIoiTrainingOptions options, IProgress<string>? log = null, CancellationToken cancel = default,
        double edgeTau = EdgeSearchTau)
    {
        var tokenizer = ToyIoiTrainer.BuildTokenizer();
        var clock = Stopwatch.StartNew();
        var progress = log == null ? null : new SyncProgress<ToyTrainingProgress>(p =>
            log.Report($"step {p.Step,5}/{p.Steps}  loss {p.Loss:F4}  answer loss {p.AnswerLoss:F4}  {p.Elapsed.TotalSeconds:F0} s"));
        using var model = ToyIoiTrainer.Train(options, tokenizer, progress, cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        log?.Report($"trained in {seconds:F0} s; evaluating on {EvaluationPrompts} held-out prompts (seed {EvaluationSeed})");
        var (report, edges) = Analyse(model, tokenizer, options, seconds, log, edgeTau);
        Save(model, tokenizer, report, edges, folder);
        log?.Report($"wrote {folder}");
        return report;
    }

    /// <summary>
    /// Recomputes the analysis of the checkpoint in <paramref name="folder"/> (for example after changing the analysis
    /// code) and rewrites its circuit.json, evaluation.json and README.md; the weights are not touched.
    /// </summary>
    public static ToyIoiReport Reanalyse(string folder, IProgress<string>? log = null, double edgeTau = EdgeSearchTau)
    {
        var previous = ToyBuildLog.ReadSmallJson<ToyIoiReport>(Path.Combine(folder, "evaluation.json"), Json);
        var tokenizer = WordLevelTokenizer.Load(Path.Combine(folder, "tokenizer.json"));
        using var model = ModelLoader.Load(folder);
        var (report, edges) = Analyse(model, tokenizer, previous.Options, previous.TrainingSeconds, log, edgeTau);
        WriteAnalysis(folder, report, edges, model.Config, tokenizer.VocabSize);
        return report;
    }

    /// <summary>
    /// Redoes only the edge circuit search and the methodology grid of the checkpoint in <paramref name="folder"/>, keeping
    /// the held-out evaluation, head effects and node circuit of its evaluation.json (they depend on the weights alone,
    /// which are not touched); for tuning the edge search without the minutes of head analysis.
    /// </summary>
    public static ToyIoiReport ReanalyseEdges(string folder, IProgress<string>? log = null, double edgeTau = EdgeSearchTau)
    {
        var previous = ToyBuildLog.ReadSmallJson<ToyIoiReport>(Path.Combine(folder, "evaluation.json"), Json);
        if (previous.Circuit is not { Count: > 0 }) throw new InvalidDataException($"{folder}/evaluation.json has no node circuit to keep; run the full analysis.");
        var tokenizer = WordLevelTokenizer.Load(Path.Combine(folder, "tokenizer.json"));
        using var model = ModelLoader.Load(folder);
        var (edges, grid, factors) = EdgesAndGrid(model, tokenizer, previous.Circuit, edgeTau, log);
        var report = previous with
        {
            EdgeCircuit = ToyBuildLog.CircuitReport(edges.Edges, edges.EdgeSearch),
            EdgeSearchSeed = EdgeSearchSeed, EdgeSearchPromptsPerPart = EdgeSearchPromptsPerPart, EdgeSearchTau = edgeTau,
            Grid = grid, Sensitivity = factors,
        };
        WriteAnalysis(folder, report, edges.Edges, model.Config, tokenizer.VocabSize);
        return report;
    }

    static (ToyCircuits Edges, IReadOnlyList<ToyGridEntry> Grid, IReadOnlyList<FactorEffect> Factors) EdgesAndGrid(HookedTransformer model, ITokenizer tokenizer,
        IReadOnlyList<IoiCircuitHead> circuit, double edgeTau, IProgress<string>? log)
    {
        var nodes = NodeCircuit(model.Config, circuit);
        var edges = DeriveEdges(model, tokenizer, nodes, circuit, edgeTau, log);
        log?.Report($"edge circuit: {edges.Edges.Edges.Count} edge-positions of {edges.EdgeSearch.Steps.Count}, {edges.EdgeSearch.Faithfulness:F1}% on the search prompts");
        var gridPrompts = KnownTasks.Ioi.Tokenize(KnownTasks.Ioi.GenerateForEvaluation(tokenizer, 0, GridPromptsPerPart), tokenizer);
        var (grid, factors) = ToyModelAnalysis.Grid(model, KnownTasks.Ioi, gridPrompts, CircuitChoice.Family(ToyIoi.Alias, nodes, edges.Edges), ToyIoi.Alias);
        foreach (var e in grid) log?.Report($"{e.Methodology}: median {e.Median:F1}%, IQR {e.Q1:F1}..{e.Q3:F1}");
        return (edges, grid, factors);
    }

    static void WriteAnalysis(string folder, ToyIoiReport report, SymbolicCircuit edges, TransformerConfig config, int vocab)
    {
        long bytes = new FileInfo(Path.Combine(folder, "model.safetensors")).Length;
        AtomicTextFile.WriteAllText(Path.Combine(folder, "circuit.json"), JsonSerializer.Serialize(report.Circuit, Json) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, ToyCircuitFiles.FileName(Component.Edge)), SymbolicCircuitJson.Write(edges, indented: true) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "evaluation.json"), JsonSerializer.Serialize(report, Json) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "README.md"), ToyIoiModelCard.Render(report, config, vocab, bytes, edges));
    }

    /// <summary>Evaluation, head effects, the node and edge circuits and the methodology grid of a trained model.</summary>
    public static (ToyIoiReport Report, SymbolicCircuit Edges) Analyse(HookedTransformer model, ITokenizer tokenizer, ToyIoiTrainingOptions options, double trainingSeconds,
        IProgress<string>? log = null, double edgeTau = EdgeSearchTau)
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
        var (edges, grid, factors) = EdgesAndGrid(model, tokenizer, circuit, edgeTau, log);
        var report = new ToyIoiReport
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
            EdgeCircuit = ToyBuildLog.CircuitReport(edges.Edges, edges.EdgeSearch),
            EdgeSearchSeed = EdgeSearchSeed, EdgeSearchPromptsPerPart = EdgeSearchPromptsPerPart, EdgeSearchTau = edgeTau,
            Grid = grid, Sensitivity = factors,
        };
        return (report, edges.Edges);
    }

    /// <summary>The node circuit of the card's heads, each kept at the IOI position it acts at (<c>toy-ioi-nodes</c>).</summary>
    public static SymbolicCircuit NodeCircuit(TransformerConfig config, IReadOnlyList<IoiCircuitHead> circuit) =>
        OfficialCircuits.NodeCircuit("toy-ioi-nodes",
            $"toy IOI model's node circuit ({string.Join(", ", circuit.Select(h => $"{h.Name}@{ToyIoiModelCard.Label(h.Position)}"))}; data/models/toy-ioi/README.md)",
            config, circuit.Select(h => (h.Name, (string?)ToyIoiModelCard.Label(h.Position))));

    /// <summary>
    /// The edge circuit (<c>toy-ioi-edges</c>): the edges among the node circuit's heads, the embeddings, the MLPs and the
    /// output, every edge at each IOI position (<see cref="IoiLabels"/>), pruned by <see cref="CircuitPruning"/> on the IOI
    /// task's prompts of seed <see cref="EdgeSearchSeed"/> with resample (ABC) ablation.
    /// </summary>
    public static ToyCircuits DeriveEdges(HookedTransformer model, ITokenizer tokenizer, SymbolicCircuit nodes, IReadOnlyList<IoiCircuitHead> circuit, double tau,
        IProgress<string>? log = null)
    {
        var search = KnownTasks.Ioi.Tokenize(KnownTasks.Ioi.GenerateForEvaluation(tokenizer, EdgeSearchSeed, EdgeSearchPromptsPerPart), tokenizer)
            .GroupBy(p => p.Name.Split('-')[0]).SelectMany(g => g.Take(EdgeSearchTemplates)).ToList();
        var kept = circuit.Select(h => (h.Name, (string?)ToyIoiModelCard.Label(h.Position))).ToList();
        return ToyModelAnalysis.DeriveEdges(model, KnownTasks.Ioi, search, IoiLabels, tau, ToyIoi.Alias,
            $"found on {EdgeSearchPromptsPerPart} IOI prompts of seed {EdgeSearchSeed} for each of the first {EdgeSearchTemplates} templates of each order", nodes, kept, null, ToyBuildLog.Search(log));
    }

    static void Save(HookedTransformer model, WordLevelTokenizer tokenizer, ToyIoiReport report, SymbolicCircuit edges, string folder)
    {
        CheckpointFolder.Replace(folder, staging =>
        {
            Gpt2CheckpointWriter.Save(model, staging, new Dictionary<string, JsonNode?> { ["eos_token_id"] = 0 });
            AtomicTextFile.WriteAllText(Path.Combine(staging, "tokenizer.json"), tokenizer.ToJson() + "\n");
            AtomicTextFile.WriteAllText(Path.Combine(staging, "tokenizer_config.json"), TokenizerConfig(ToyIoiTrainer.EndOfText, ToyIoiTrainer.Unknown, model.Config.NCtx));
            WriteAnalysis(staging, report, edges, model.Config, tokenizer.VocabSize);
        });
    }

    /// <summary>A HuggingFace <c>tokenizer_config.json</c> for the toy models' word-level tokenizers (the BOS is never added by itself).</summary>
    internal static string TokenizerConfig(string bos, string unknown, int maxLength) => new JsonObject
    {
        ["tokenizer_class"] = "PreTrainedTokenizerFast",
        ["bos_token"] = bos,
        ["eos_token"] = bos,
        ["unk_token"] = unknown,
        ["add_bos_token"] = false,
        ["model_max_length"] = maxLength,
    }.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";

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
    static string GridPromptsPerPartText => ToyIoiBuild.GridPromptsPerPart.ToString(CultureInfo.InvariantCulture);

    public static string Label(IoiPosition? p) => p switch
    {
        IoiPosition.IndirectObject => "IO",
        IoiPosition.Subject1 => "S1",
        IoiPosition.Subject1Plus1 => "S1+1",
        IoiPosition.Subject2 => "S2",
        IoiPosition.End => "end",
        _ => "other",
    };

    public static string Render(ToyIoiReport r, TransformerConfig c, int vocab, long checkpointBytes, SymbolicCircuit edges)
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
        sb.AppendLine("on the 2-core development machine. With the same seed and thread count the run is deterministic: retraining reproduces");
        sb.AppendLine("`model.safetensors` byte for byte on the same CPU and libtorch build; other CPUs or libtorch builds may round");
        sb.AppendLine("differently. A test retrains the first steps and compares them with a committed hash; the full check retrains and");
        sb.AppendLine("compares the whole file: `WORKBOOK_RETRAIN=1 dotnet test Workbook.sln --filter \"FullyQualifiedName~ToyRetrainingTests&DisplayName~toy-ioi\"`.");
        sb.AppendLine();
        sb.AppendLine("## Model");
        sb.AppendLine();
        sb.AppendLine($"GPT-2 architecture (pre-LayerNorm, gelu_new, learned positions, tied unembedding, no dropout): {c.NLayers} layers,");
        sb.AppendLine($"d_model {c.DModel}, {c.NHeads} heads of {c.DHead}, MLP {c.DMlp}, context {c.NCtx}, vocabulary {vocab}; {r.Parameters:N0} parameters,");
        sb.AppendLine($"`model.safetensors` {checkpointBytes:N0} bytes (float32). Files: `config.json` (model_type gpt2) and `model.safetensors`");
        sb.AppendLine("(GPT-2 tensor names) as on the HuggingFace hub; `tokenizer.json` (WordLevel model, Whitespace pre-tokenizer) and");
        sb.AppendLine("`tokenizer_config.json`; `circuit.json` (the heads below); `circuit-edges.json` (the edge circuit below); `evaluation.json`");
        sb.AppendLine("(every number in this card).");
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
        if (r.EdgeCircuit is { } ec)
        {
            sb.AppendLine();
            sb.AppendLine("## Edge circuit");
            sb.AppendLine();
            sb.AppendLine($"**Edge circuit** (`circuit-edges.json`, `toy-ioi-edges`; the node circuit above is `toy-ioi-nodes`, both together the family");
            sb.AppendLine("`toy-ioi`): found with the workbook's discovery code (`CircuitPruning`, ACDC's greedy search position by position). It");
            sb.AppendLine("starts from every edge among the circuit heads, the embeddings, the MLPs and the output (the edge circuit the node");
            sb.AppendLine($"circuit induces, `toy-ioi-edges-induced`), each at each of IO, S1, S1+1, S2 and end ({ec.StartEntries} edge-positions), and removes");
            sb.AppendLine("them one by one, output side first, while the circuit's distance from the full model, |100 − logit difference");
            sb.AppendLine($"recovered| (ratio of means, resample ablation from the ABC prompts, token-specific), grows by less than τ = {F(r.EdgeSearchTau, "G3")}");
            sb.AppendLine($"point{(r.EdgeSearchTau == 1 ? "" : "s")}, on {r.EdgeSearchPromptsPerPart} prompts of seed {r.EdgeSearchSeed} for each of the first {ToyIoiBuild.EdgeSearchTemplates} templates of each name order");
            sb.AppendLine($"(not the prompts below). {ec.Entries} edge-positions ({ec.DistinctEdges} edges) remain;");
            sb.AppendLine($"on the search prompts the faithfulness went from {F(ec.StartFaithfulness, "F1")}% to {F(ec.SearchFaithfulness, "F1")}%. Its complement holds edges between circuit");
            sb.AppendLine("nodes, which node ablation keeps and edge ablation removes, so the two differ as in the paper's Figure 3:");
            sb.AppendLine();
            foreach (var group in edges.Edges.GroupBy(e => e.Name))
                sb.AppendLine($"- `{group.Key}` @ {string.Join(", ", group.Select(e => e.Position ?? "all"))}");
            sb.AppendLine();
        }
        if (r.Grid is { } grid && r.Sensitivity is { } sensitivity)
        {
            sb.AppendLine($"The grid below uses the IOI task's prompts of seed 0, {GridPromptsPerPartText} per template and order (`--prompts {ToyIoiBuild.GridPromptsPerPart}`).");
            sb.AppendLine();
            ToyModelCard.AppendGrid(sb, ToyIoi.Alias, "ioi", grid, sensitivity);
        }
        ToyModelCard.AppendLicence(sb);
        return sb.ToString();
    }
}
