using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Workbook.Checkpoints;
using Workbook.Circuits;
using Workbook.Discovery;
using Workbook.Evaluation;
using Workbook.Model;
using Workbook.Patching;
using Workbook.Tasks;
using Workbook.Tokenization;

namespace Workbook.Embedded;

/// <summary>
/// Builds the toy Docstring checkpoint folder: trains the model, measures it on held-out prompts, finds its node and
/// edge circuits (<see cref="ToyModelAnalysis.Derive"/>), measures the methodology grid, and writes a TransformerLens
/// folder with tokenizer, circuits, evaluation.json and the model card. Files appear only when all are written.
/// </summary>
public static class ToyDocstringBuild
{
    /// <summary>Held-out accuracy: the first prompts of this dataset seed (training prompts come from a generator of their own, <see cref="ToyDocstringTrainer.TrainingPrompt"/>).</summary>
    public const int EvaluationSeed = 1;
    public const int EvaluationPrompts = 1000;
    /// <summary>The circuit search runs on these prompts; the grid is measured on the paper's (seed 0), as the notebooks use them.</summary>
    public const int SearchSeed = 2;
    public const int SearchPrompts = 50;
    public const int GridPrompts = 50;

    /// <summary>Points of percent a removal may cost in the node and the edge search (<see cref="CircuitPruning"/>).</summary>
    /// <remarks>The edge search's τ = 3 prunes further than the node search's (with τ = 1 the edge circuit stayed within 4
    /// points of the node circuit, 92.9% vs 96.8%, too close for the node/edge contrast the notebooks show).</remarks>
    public static ToySearchThresholds Tau { get; } = new(1.0, 3.0);

    public static ToyModelReport TrainAndSave(string folder, ToyDocstringTrainingOptions options, IProgress<string>? log = null, CancellationToken cancel = default,
        ToySearchThresholds? tau = null)
    {
        var tokenizer = ToyDocstringTrainer.BuildTokenizer();
        var clock = Stopwatch.StartNew();
        using var model = ToyDocstringTrainer.Train(options, tokenizer, ToyBuildLog.Training(log), cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        log?.Report($"trained in {seconds:F0} s");
        var (report, circuits) = Analyse(model, tokenizer, ToyModelAnalysis.OptionsJson(options), seconds, tau ?? Tau, log);
        Save(model, tokenizer, report, circuits, folder);
        log?.Report($"wrote {folder}");
        return report;
    }

    /// <summary>Redoes the evaluation, circuit search and card of the checkpoint in <paramref name="folder"/>; the weights are not touched.</summary>
    public static ToyModelReport Reanalyse(string folder, IProgress<string>? log = null, ToySearchThresholds? tau = null)
    {
        var previous = ToyBuildLog.ReadSmallJson<ToyModelReport>(Path.Combine(folder, "evaluation.json"), ToyIoiBuild.Json);
        var tokenizer = WordLevelTokenizer.Load(Path.Combine(folder, "tokenizer.json"), name: ToyDocstring.Alias);
        using var model = ModelLoader.Load(folder);
        var (report, circuits) = Analyse(model, tokenizer, previous.Options, previous.TrainingSeconds, tau ?? Tau, log);
        ToyBuildLog.RewriteAnalysis(folder, report, circuits, Card(report, model.Config, tokenizer.VocabSize, new FileInfo(Path.Combine(folder, "model.safetensors")).Length, circuits));
        return report;
    }

    static IReadOnlyList<TokenizedDataset> Prompts(ITokenizer tokenizer, int seed, int count) =>
        KnownTasks.Docstring.Tokenize(KnownTasks.Docstring.GenerateForEvaluation(tokenizer, seed, count), tokenizer);

    public static (ToyModelReport Report, ToyCircuits Circuits) Analyse(HookedTransformer model, ITokenizer tokenizer, System.Text.Json.Nodes.JsonObject options,
        double trainingSeconds, ToySearchThresholds tau, IProgress<string>? log = null)
    {
        var task = KnownTasks.Docstring;
        var heldOut = ToyModelAnalysis.Score(model, Prompts(tokenizer, EvaluationSeed, EvaluationPrompts));
        log?.Report($"held-out: top-1 {heldOut.Accuracy:P1}, beats the 13 candidates {heldOut.BeatsCandidates:P1}, mean logit diff {heldOut.MeanLogitDiff:F3}");
        var search = Prompts(tokenizer, SearchSeed, SearchPrompts);
        var circuits = ToyModelAnalysis.Derive(model, task, search, search[0].Positions.Labels.ToList(), tau, ToyDocstring.Alias,
            $"found on {SearchPrompts} prompts of seed {SearchSeed}", ToyBuildLog.Search(log));
        log?.Report($"node circuit: {circuits.Nodes.Edges.Count(e => e.Source.StartsWith('A'))} head-positions, {F(circuits.NodeSearch!.Faithfulness)}%; " +
                    $"edge circuit: {circuits.Edges.Edges.Count} edge-positions, {F(circuits.EdgeSearch.Faithfulness)}%");
        var (grid, factors) = ToyModelAnalysis.Grid(model, task, Prompts(tokenizer, 0, GridPrompts),
            CircuitChoice.Family(ToyDocstring.Alias, circuits.Nodes, circuits.Edges), ToyDocstring.Alias);
        foreach (var e in grid) log?.Report($"{e.Methodology}: median {F(e.Median)}%, IQR {F(e.Q1)}..{F(e.Q3)}");
        var report = new ToyModelReport
        {
            Model = ToyDocstring.Alias, Task = task.Name, Options = options, TrainingSeconds = Math.Round(trainingSeconds, 1),
            Parameters = (int)model.parameters().Sum(p => p.numel()), EvaluationSeed = EvaluationSeed, HeldOut = heldOut,
            SearchSeed = SearchSeed, SearchPrompts = SearchPrompts, Tau = tau,
            NodeCircuit = ToyBuildLog.CircuitReport(circuits.Nodes, circuits.NodeSearch!), EdgeCircuit = ToyBuildLog.CircuitReport(circuits.Edges, circuits.EdgeSearch),
            Grid = grid, Sensitivity = factors,
        };
        return (report, circuits);
    }

    static string F(double x) => x.ToString("F1", CultureInfo.InvariantCulture);

    static void Save(HookedTransformer model, WordLevelTokenizer tokenizer, ToyModelReport report, ToyCircuits circuits, string folder) =>
        CheckpointFolder.Replace(folder, staging =>
        {
            TransformerLensCheckpointWriter.Save(model, staging);
            ToyBuildLog.WriteTokenizer(staging, tokenizer, ToyDocstringTrainer.EndOfText, ToyDocstringTrainer.Unknown, model.Config.NCtx);
            long bytes = new FileInfo(Path.Combine(staging, "model.safetensors")).Length;
            ToyBuildLog.RewriteAnalysis(staging, report, circuits, Card(report, model.Config, tokenizer.VocabSize, bytes, circuits));
        });

    static string Card(ToyModelReport r, TransformerConfig c, int vocab, long bytes, ToyCircuits circuits)
    {
        var o = r.Options;
        var text = new ToyCardText
        {
            Title = "a small attention-only model trained on the Docstring task",
            Introduction =
                "Trained by this repository on a CPU in minutes, so that the Docstring analyses of the workbook (notebook `02-docstring`,\n" +
                "the paper's Figure 9) run with nothing downloaded. Like attn-only-4l in Heimersheim & Janiak's Docstring study, it\n" +
                "completes a Python method's reST docstring with the name of the next argument: after `def f(self, x, y, a, b, c, z):`\n" +
                "and `:param a: ...`, `:param b: ...`, the next `:param` is followed by ` c`.",
            Recipe =
                $"Seed {o["seed"]}, {o["steps"]} steps of batch {o["batchSize"]}, AdamW (peak learning rate {o["learningRate"]}, {o["warmupSteps"]} warm-up steps, cosine decay to a\n" +
                $"tenth, weight decay {o["weightDecay"]} on matrices, gradient norm clipped at 1), {o["threads"]} CPU thread(s).",
            Architecture =
                "Attention-only transformer in TransformerLens layout, like attn-only-4l (pre-LayerNorm, learned positions, untied\n" +
                "unembedding, no MLPs): `config.json` (TransformerLens fields, `attn_only: true`) and `model.safetensors` (TransformerLens\n" +
                "tensor names);",
            Tokenizer =
                "Tokenizer (`tokenizer.json`, a HuggingFace WordLevel model with a ByteLevel pre-tokenizer): text is cut with GPT-2's\n" +
                "pattern and every piece is one token: the layout pieces (`\\n`, `def`, `(`, `self`, `,`, `):`, the indentation, ` \"\"\"`,\n" +
                "` :`, `param`, `:`), the 111 variable names with their leading space and the 687 description nouns with and without it.\n" +
                "Every Docstring prompt is 40 tokens (41 with BOS) with its arguments at the task's labelled positions (A_def 10, B_def 12,\n" +
                "..., param_3 39), as under attn-only-4l's tokenizer. Id 0 is `<|endoftext|>` (BOS and padding, never added implicitly).",
            TrainingData =
                "Fresh prompts every step in the task's layout (`DocstringGenerator`, spec D.3: a method's definition, a description,\n" +
                "`:param` lines for the definition's arguments in order, the last of which is the answer) with their shape drawn afresh\n" +
                $"(`ToyDocstringTrainer.TrainingPrompt`): 0 to {ToyDocstringTrainer.MaxBefore} definition arguments before the documented ones, 3 matching ones (2 documented, then the\n" +
                $"answer), 0 to {ToyDocstringTrainer.MaxAfter} after; 1 to 4 words of method description and 1 to 3 per argument. The evaluation prompts (2 before,\n" +
                "1 after, 3 and 2 words) are one of these shapes. Names and nouns come from the task's lists, drawn by a seeded\n" +
                "generator of its own, so the evaluation prompts are not training prompts. BOS prepended, the answer appended.\n" +
                "Next-token loss on every token, with every argument name the rule determines (after each `:param` but the first)\n" +
                $"weighted {o["answerWeight"]}×.\n\n" +
                "Why the shapes vary: an earlier recipe trained on the evaluation layout only (1,000 steps). That model reached 100%\n" +
                "but read the answer off position 14: one layer-0 head at the last position attended sharply to that position, so\n" +
                "nothing at any other position mattered, and specific and all token positions moved its medians by 0.2 points.\n" +
                "When the answer's place moves, no fixed position works: the heads at the last position attend over several of the\n" +
                "prompt's names (the edge circuit keeps their keys and values at A_def, B_def, C_def, A_doc and B_doc), so where\n" +
                "they attend also depends on the keys at the positions the task does not label, which varied in training. A\n" +
                "token-specific edge circuit ablates those; the all-positions variant keeps them, and the edge circuit's medians\n" +
                "move by several points (the grid below). Node ablation keeps every embedding edge, so there the two barely\n" +
                "differ. The price of the varying shapes is a harder task: 4,000 steps, and a lower held-out accuracy.",
            Evaluation =
                $"The first {r.HeldOut.Prompts} prompts of dataset seed {r.EvaluationSeed}, read at the last position. The wrong candidates are the 13 other\n" +
                "names of the prompt, so a model that picks one of the prompt's names at random beats them 1 time in 14 (7.1%).",
            CircuitSearch =
                $"Found with the workbook's discovery code on {r.SearchPrompts} prompts of seed {r.SearchSeed} (not the evaluation prompts), resample ablation\n" +
                "from the corrupt prompts, token-specific (`CircuitPruning`, ACDC's greedy search position by position; each step is\n" +
                "measured by the same evaluator as the grid below). **Nodes**: every head at each of the task's eight labelled positions,\n" +
                $"then head-positions removed one by one (output side first) while the circuit's distance from the full model,\n" +
                $"|100 − logit difference recovered| (ratio of means), grows by less than τ = {r.Tau.NodeTau:G3} point{(r.Tau.NodeTau == 1 ? "" : "s")}. **Edges**: every edge among the\n" +
                $"kept heads, the embeddings and the output, at each labelled position, pruned the same way with τ = {r.Tau.EdgeTau:G3} point{(r.Tau.EdgeTau == 1 ? "" : "s")}. The edge circuit is therefore\n" +
                "a subset of the edges between the node circuit's nodes: its complement holds edges between circuit nodes, which node\n" +
                "ablation keeps and edge ablation removes.",
        };
        return ToyModelCard.Render(r, text, c, vocab, bytes, circuits.Nodes, circuits.Edges);
    }
}

/// <summary>Small pieces the toy models' builds share: progress lines, report records and the analysis files.</summary>
internal static class ToyBuildLog
{
    /// <summary>A toy model's JSON or text file (cards, circuits, reports: kilobytes), read only if it is a regular file of at most 16 MB.</summary>
    public static string ReadSmallFile(string path) => Util.JsonInput.ReadText(path, SmallFileError, Util.JsonInput.MaxSmallFileBytes);

    /// <summary>A toy model's JSON file (as <see cref="ReadSmallFile"/>) deserialized through <see cref="Util.JsonInput"/>; <paramref name="source"/> names it in errors.</summary>
    public static T ReadSmallJson<T>(string path, System.Text.Json.JsonSerializerOptions options, string? source = null) =>
        Util.JsonInput.Deserialize<T>(ReadSmallFile(path), source ?? path, options, SmallFileError);

    static Exception SmallFileError(string message, Exception? inner) => new InvalidDataException(message, inner);

    public static IProgress<ToyTrainingProgress>? Training(IProgress<string>? log) => log is null ? null : new ToyIoiBuild.SyncProgress<ToyTrainingProgress>(p =>
        log.Report($"step {p.Step,5}/{p.Steps}  loss {p.Loss:F4}  answer loss {p.AnswerLoss:F4}  {p.Elapsed.TotalSeconds:F0} s"));

    public static IProgress<Progress.WorkProgress>? Search(IProgress<string>? log) => log is null ? null : new ToyIoiBuild.SyncProgress<Progress.WorkProgress>(p =>
    {
        if (p.Done % 10 == 0 || p.Done == p.Total) log.Report($"pruning {p.Done}/{p.Total}: {p.Item}");
    });

    public static ToyCircuitReport CircuitReport(SymbolicCircuit circuit, PruningResult search) => new()
    {
        Name = circuit.Name,
        Entries = circuit.Component == Component.Node ? circuit.Edges.Count(e => e.Source.StartsWith('A')) : circuit.Edges.Count,
        DistinctEdges = circuit.DistinctEdgeCount,
        StartEntries = search.Steps.Count,
        StartFaithfulness = Math.Round(search.StartFaithfulness, 2),
        SearchFaithfulness = Math.Round(search.Faithfulness, 2),
    };

    public static void WriteTokenizer(string folder, WordLevelTokenizer tokenizer, string bos, string unknown, int context)
    {
        AtomicTextFile.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizer.ToJson() + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), ToyIoiBuild.TokenizerConfig(bos, unknown, context));
    }

    /// <summary>Writes circuit-nodes.json, circuit-edges.json, evaluation.json and README.md.</summary>
    public static void RewriteAnalysis(string folder, ToyModelReport report, ToyCircuits circuits, string card)
    {
        AtomicTextFile.WriteAllText(Path.Combine(folder, ToyCircuitFiles.FileName(Component.Node)), SymbolicCircuitJson.Write(circuits.Nodes, indented: true) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, ToyCircuitFiles.FileName(Component.Edge)), SymbolicCircuitJson.Write(circuits.Edges, indented: true) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "evaluation.json"), JsonSerializer.Serialize(report, ToyIoiBuild.Json) + "\n");
        AtomicTextFile.WriteAllText(Path.Combine(folder, "README.md"), card);
    }
}
