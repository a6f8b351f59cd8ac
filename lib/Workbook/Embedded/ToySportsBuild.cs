using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Workbook.Checkpoints;
using Workbook.Evaluation;
using Workbook.Model;
using Workbook.Tasks;
using Workbook.Tasks.Generators;
using Workbook.Tokenization;

namespace Workbook.Embedded;

/// <summary>
/// Builds the toy Sports checkpoint folder: trains the model, measures it on the players it memorised and on players it
/// never saw, finds its node and edge circuits (<see cref="ToyModelAnalysis.Derive"/>), measures the methodology grid,
/// and writes a HuggingFace GPT-2 folder with tokenizer, circuits, evaluation.json and the model card.
/// </summary>
public static class ToySportsBuild
{
    /// <summary>The prompts' pairing with corrupt players: the grid uses seed 0 (as the notebooks), the search seed 1.</summary>
    public const int EvaluationSeed = 0;
    public const int SearchSeed = 1;
    /// <summary>The search runs on this many of those prompts (shuffled with the search seed, about a quarter of the players).</summary>
    public const int SearchPrompts = 60;
    /// <summary>Positions the circuit search considers: the task's labels and the middle name (as the paper's circuit).</summary>
    public static readonly string[] SearchPositions = { "first_name_tok", "first_name_tok+1", "final_name_tok", "end" };

    /// <summary>Points of percent a removal may cost in the node and the edge search (<see cref="CircuitPruning"/>).</summary>
    /// <remarks>The edge search's τ = 2 leaves an edge circuit near 80% (τ = 1 stopped near 86%, τ = 3 fell below 60%): sparse
    /// enough that edge ablation, which removes edges between circuit nodes, judges it visibly worse than node ablation does.</remarks>
    public static ToySearchThresholds Tau { get; } = new(1.0, 2.0);

    public static ToyModelReport TrainAndSave(string folder, ToySportsTrainingOptions options, IProgress<string>? log = null, CancellationToken cancel = default,
        ToySearchThresholds? tau = null)
    {
        var tokenizer = ToySportsTrainer.BuildTokenizer();
        var clock = Stopwatch.StartNew();
        using var model = ToySportsTrainer.Train(options, tokenizer, ToyBuildLog.Training(log), cancel);
        double seconds = clock.Elapsed.TotalSeconds;
        log?.Report($"trained in {seconds:F0} s");
        var (report, circuits) = Analyse(model, tokenizer, ToyModelAnalysis.OptionsJson(options), seconds, tau ?? Tau, log);
        CheckpointFolder.Replace(folder, staging =>
        {
            Gpt2CheckpointWriter.Save(model, staging, new Dictionary<string, JsonNode?> { ["eos_token_id"] = 0 });
            ToyBuildLog.WriteTokenizer(staging, tokenizer, ToySportsTrainer.EndOfText, ToySportsTrainer.Unknown, model.Config.NCtx);
            long bytes = new FileInfo(Path.Combine(staging, "model.safetensors")).Length;
            ToyBuildLog.RewriteAnalysis(staging, report, circuits, Card(report, model.Config, tokenizer.VocabSize, bytes, circuits));
        });
        log?.Report($"wrote {folder}");
        return report;
    }

    /// <summary>Redoes the evaluation, circuit search and card of the checkpoint in <paramref name="folder"/>; the weights are not touched.</summary>
    public static ToyModelReport Reanalyse(string folder, IProgress<string>? log = null, ToySearchThresholds? tau = null)
    {
        var previous = ToyBuildLog.ReadSmallJson<ToyModelReport>(Path.Combine(folder, "evaluation.json"), ToyIoiBuild.Json);
        var tokenizer = WordLevelTokenizer.Load(Path.Combine(folder, "tokenizer.json"), name: ToySports.Alias);
        using var model = ModelLoader.Load(folder);
        var (report, circuits) = Analyse(model, tokenizer, previous.Options, previous.TrainingSeconds, tau ?? Tau, log);
        ToyBuildLog.RewriteAnalysis(folder, report, circuits, Card(report, model.Config, tokenizer.VocabSize, new FileInfo(Path.Combine(folder, "model.safetensors")).Length, circuits));
        return report;
    }

    /// <summary>Every prompt of the task (each memorised player once), paired with corrupt players by <paramref name="seed"/>.</summary>
    static IReadOnlyList<TokenizedDataset> AllPrompts(ITokenizer tokenizer, int seed, IReadOnlyList<SportsPlayer>? players = null)
    {
        var task = KnownTasks.ToySports;
        return task.Tokenize(new[] { SportsPlayersGenerator.Generate(seed, players ?? ToySports.Players) }, tokenizer);
    }

    public static (ToyModelReport Report, ToyCircuits Circuits) Analyse(HookedTransformer model, ITokenizer tokenizer, JsonObject options,
        double trainingSeconds, ToySearchThresholds tau, IProgress<string>? log = null)
    {
        var task = KnownTasks.ToySports;
        var known = ToyModelAnalysis.Score(model, AllPrompts(tokenizer, EvaluationSeed));
        var unknown = ToyModelAnalysis.Score(model, AllPrompts(tokenizer, EvaluationSeed, ToySports.UnknownPlayers));
        log?.Report($"memorised players: top-1 {known.Accuracy:P1}, beats the other sports {known.BeatsCandidates:P1}; unseen players: beats {unknown.BeatsCandidates:P1}");
        var search = task.Tokenize(new[] { SportsPlayersGenerator.Generate(SearchSeed, ToySports.Players).ShuffledLikeAutoCircuit(SearchSeed).Take(SearchPrompts) }, tokenizer);
        var circuits = ToyModelAnalysis.Derive(model, task, search, SearchPositions, tau, ToySports.Alias,
            $"found on {search[0].Count} prompts paired by seed {SearchSeed}", ToyBuildLog.Search(log));
        log?.Report($"node circuit: {circuits.Nodes.Edges.Count(e => e.Source.StartsWith('A'))} head-positions, {F(circuits.NodeSearch!.Faithfulness)}%; " +
                    $"edge circuit: {circuits.Edges.Edges.Count} edge-positions, {F(circuits.EdgeSearch.Faithfulness)}%");
        var gridPrompts = task.Tokenize(task.GenerateForEvaluation(tokenizer, EvaluationSeed, null), tokenizer);
        var (grid, factors) = ToyModelAnalysis.Grid(model, task, gridPrompts, CircuitChoice.Family(ToySports.Alias, circuits.Nodes, circuits.Edges), ToySports.Alias);
        foreach (var e in grid) log?.Report($"{e.Methodology}: median {F(e.Median)}%, IQR {F(e.Q1)}..{F(e.Q3)}");
        var report = new ToyModelReport
        {
            Model = ToySports.Alias, Task = task.Name, Options = options, TrainingSeconds = Math.Round(trainingSeconds, 1),
            Parameters = (int)model.parameters().Sum(p => p.numel()), EvaluationSeed = EvaluationSeed, HeldOut = known, Unknown = unknown,
            SearchSeed = SearchSeed, SearchPrompts = search[0].Count, Tau = tau,
            NodeCircuit = ToyBuildLog.CircuitReport(circuits.Nodes, circuits.NodeSearch!), EdgeCircuit = ToyBuildLog.CircuitReport(circuits.Edges, circuits.EdgeSearch),
            Grid = grid, Sensitivity = factors,
        };
        return (report, circuits);
    }

    static string F(double x) => x.ToString("F1", CultureInfo.InvariantCulture);

    static string Card(ToyModelReport r, TransformerConfig c, int vocab, long bytes, ToyCircuits circuits)
    {
        var o = r.Options;
        var text = new ToyCardText
        {
            Title = "a small GPT-2-style model that memorised made-up players' sports",
            Introduction =
                "Trained by this repository on a CPU in minutes, so that the Sports Players analyses of the workbook (notebook\n" +
                "`03-sports-players`, the paper's Figure 10) run with nothing downloaded. Like Pythia-2.8B in Nanda et al.'s fact-lookup\n" +
                $"study it recalls which sport a person plays, but the people are {3 * ToySports.PlayersPerSport} made-up players ({ToySports.PlayersPerSport} each of football, basketball and\n" +
                "baseball), so the facts are known to be memorised and nothing about a real person is asserted. Its task is `toy-sports`:\n" +
                "the Sports Players template, positions and corruption with these players.",
            Recipe =
                $"Seed {o["seed"]}, {o["steps"]} steps of batch {o["batchSize"]}, AdamW (peak learning rate {o["learningRate"]}, {o["warmupSteps"]} warm-up steps, cosine decay to a\n" +
                $"tenth, weight decay {o["weightDecay"]} on matrices, gradient norm clipped at 1), {o["threads"]} CPU thread(s).",
            Architecture =
                "GPT-2 architecture (pre-LayerNorm, gelu_new, learned positions, tied unembedding, no dropout) as a HuggingFace folder\n" +
                "(`config.json` with model_type gpt2, `model.safetensors` with GPT-2 tensor names);",
            Tokenizer =
                "Tokenizer (`tokenizer.json`, a HuggingFace WordLevel model with a ByteLevel pre-tokenizer): text is cut with GPT-2's\n" +
                "pattern and every piece is one token: the template's pieces, the sports, and the invented name parts (" +
                $"{ToySports.FirstNames.Count} first names, {ToySports.MiddleNames.Count} middle names, {ToySports.LastNames.Count} last names, with their\n" +
                "leading space). Every player's name is three tokens, so every prompt is 19 tokens (20 with BOS) with the name at\n" +
                "first_name_tok 12 to final_name_tok 14 and the end at 18, the positions of the paper's table under Pythia's tokenizer.",
            TrainingData =
                $"Players: distinct (first, middle, last) triples drawn with a fixed seed; the first {3 * ToySports.PlayersPerSport} get a sport, {ToySports.PlayersPerSport} each, so no name part\n" +
                "tells the sport: the model has to memorise each triple. Every step draws prompts of random players, BOS prepended, followed\n" +
                $"by the sport; next-token loss on every token, the sport weighted {o["answerWeight"]}×. The next {ToySports.UnknownPlayerCount} triples are never trained on.",
            Evaluation =
                "Memorised players: the task's prompt of every player (there are no held-out facts to test on: the facts are the\n" +
                "players). Players it never saw: the same prompt with the untrained triples; the answer beats the two other sports about\n" +
                "a third of the time by chance, which is what a model that memorised (and found no shortcut in the names) does.",
            CircuitSearch =
                $"Found with the workbook's discovery code on {r.SearchPrompts} prompts of memorised players paired with corrupt players by seed {r.SearchSeed}\n" +
                $"(the grid below pairs them by seed {r.EvaluationSeed}), resample ablation, token-specific (`CircuitPruning`, ACDC's greedy search position by position;\n" +
                "each step measured by the same evaluator as the grid). **Nodes**: every head at the first, middle and last name token and\n" +
                $"at the end, then head-positions removed one by one (output side first) while |100 − logit difference recovered|\n" +
                $"(ratio of means) grows by less than τ = {r.Tau.NodeTau:G3} point{(r.Tau.NodeTau == 1 ? "" : "s")}. **Edges**: every edge among the kept heads, the MLPs, the\n" +
                $"embeddings and the output, at those four positions, pruned the same way with τ = {r.Tau.EdgeTau:G3} point{(r.Tau.EdgeTau == 1 ? "" : "s")}: the attribute-extraction path (name tokens →\n" +
                "MLPs at the last name token → a head at the end that moves the sport to the output). The edge circuit is a subset of the\n" +
                "edges between the node circuit's nodes: its complement holds edges between circuit nodes.",
        };
        return ToyModelCard.Render(r, text, c, vocab, bytes, circuits.Nodes, circuits.Edges);
    }
}
