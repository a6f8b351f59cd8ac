using Workbook.Circuits;
using Workbook.Evaluation;
using Workbook.Graph;
using Workbook.Metrics;
using Workbook.Patching;
using Workbook.Progress;

namespace Workbook.Experiments;

/// <summary>The rows of one batch size of the ABC-dataset-size sweep (Figure 4).</summary>
public sealed record BatchSizePoint(int BatchSize, IReadOnlyList<EvaluationRow> Rows);

/// <summary>Figure 4's data: node circuit, specific tokens, batch-mean ablation, per batch size ("ABC dataset size").</summary>
public sealed record AbcSizeSweep(IReadOnlyList<BatchSizePoint> Points)
{
    /// <summary>The model's name and whether its weights are random (figure titles say so).</summary>
    public ModelLabel? Model { get; init; }
}

/// <summary>
/// Figure 10's data: per ablation value, the circuit (its complement ablated), the ablated model (every edge
/// ablated) and the unpatched model, on the same prompts.
/// </summary>
public sealed record CircuitVsAblated(IReadOnlyList<EvaluationRow> Circuit, IReadOnlyList<EvaluationRow> AblatedModel, IReadOnlyList<BaselineRow> FullModel)
{
    /// <summary>The model's name and whether its weights are random (figure titles say so).</summary>
    public ModelLabel? Model { get; init; }
}

/// <summary>One Tracr circuit evaluated under several ablation values (Section 5).</summary>
public sealed record TracrAblation(string Task, string Circuit, MetricKind Metric, IReadOnlyList<EvaluationRow> Rows);

/// <summary>
/// The evaluations behind the paper's figures, on a <see cref="FigureSetup"/>: each returns tidy rows that
/// <see cref="Figures.PaperFigures"/> turns into figures. Every methodology is spelled out here, as in spec A.
/// </summary>
public static class PaperExperiments
{
    /// <summary>
    /// Figure 3 (spec A.1): nodes and edges × specific and all tokens × resample and the task's mean ablation, the
    /// circuit kept; per-prompt logit difference recovered and its ratio-of-means aggregation.
    /// </summary>
    public static EvaluationResult NodesEdgesTokensValues(FigureSetup setup)
    {
        var grid = new ReportGrid { Values = new[] { AblationValue.Resample, AblationValue.Mean(setup.Task.PaperMean) }, Sets = new[] { AblatedSet.Complement } };
        var methodologies = RobustnessReport.Methodologies(grid, setup.Circuit, setup.Task.PaperMean);
        return Evaluator.RunWithBaseline(setup.Request(methodologies, new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans }));
    }

    /// <summary>
    /// Figure 4 (spec A.2): the node circuit at its token positions with each batch's own mean over its corrupt
    /// prompts ("ABC dataset size" = batch size), for each batch size; both aggregations of logit difference recovered.
    /// </summary>
    public static AbcSizeSweep AbcDatasetSize(FigureSetup setup, IReadOnlyList<int> batchSizes)
    {
        if (batchSizes.Count == 0) throw new ArgumentException("Give at least one batch size.");
        int smallest = setup.Parts.Min(p => p.Count);
        foreach (int b in batchSizes)
            if (b > smallest)
                throw new ArgumentException($"Batch size {b} exceeds the {smallest} prompts per part; use more prompts or smaller batches.");
        var methodology = new Methodology
        {
            Component = Component.Node, Positions = setup.Circuit.HasPositions ? TokenPositions.Specific : TokenPositions.All,
            Value = AblationValue.Mean(MeanOver.Batch), Ablate = AblatedSet.Complement,
        };
        var points = batchSizes.Select(b => new BatchSizePoint(b,
            Evaluator.Run(setup.Request(new[] { methodology }, new[] { MetricKind.LogitDiffRecovered, MetricKind.LogitDiffRecoveredOfMeans }, batchSize: b)))).ToArray();
        return new AbcSizeSweep(points) { Model = setup.Label };
    }

    /// <summary>
    /// Figure 9 (spec A.3): nodes and edges × specific and all tokens × resample and the task's mean, circuit kept;
    /// the share of prompts whose answer beats every candidate, and the answer's probability. The unpatched model's
    /// values come with them.
    /// </summary>
    public static EvaluationResult CandidatesAndProbability(FigureSetup setup)
    {
        var grid = new ReportGrid { Values = new[] { AblationValue.Resample, AblationValue.Mean(setup.Task.PaperMean) }, Sets = new[] { AblatedSet.Complement } };
        var methodologies = RobustnessReport.Methodologies(grid, setup.Circuit, setup.Task.PaperMean);
        return Evaluator.RunWithBaseline(setup.Request(methodologies, new[] { MetricKind.CorrectVsCandidatesPercent, MetricKind.AnswerProb }));
    }

    /// <summary>
    /// Figure 10 (spec A.4): for resample and the task's mean ablation, the edge circuit at its positions (complement
    /// ablated) and the ablated model (every edge ablated, outside the never-patched prefix); the share of prompts
    /// whose answer beats the candidates and the answer's probability.
    /// </summary>
    public static CircuitVsAblated CircuitAgainstAblatedModel(FigureSetup setup)
    {
        var component = setup.Circuit.Components.Contains(Component.Edge) ? Component.Edge : Component.Node;
        var circuit = setup.Circuit.For(component);
        var values = new[] { AblationValue.Resample, AblationValue.Mean(setup.Task.PaperMean) };
        var metrics = new[] { MetricKind.CorrectVsCandidatesPercent, MetricKind.AnswerProb };
        var granularity = component == Component.Edge ? setup.Circuit.EdgeGranularity : Granularity.QkvSeparate;
        var kept = values.Select(v => new Methodology
        {
            Component = component, Granularity = granularity, Value = v,
            Positions = circuit.HasPositions ? TokenPositions.Specific : TokenPositions.All, Ablate = AblatedSet.Complement,
        }).ToArray();
        // Both evaluations run the same prompts: the clean runs and dataset means are computed once for the two.
        using var cache = new EvaluationCache(setup.Loaded.Model, setup.ReuseWork);
        var withCircuit = Evaluator.RunWithBaseline(setup.Request(kept, metrics, cache: cache));
        var graph = component == Component.Node ? ComputationGraph.Residual(setup.Loaded.Model.Config) : ComputationGraph.Factorized(setup.Loaded.Model.Config, circuit.SeparateQkv);
        var everything = CircuitChoice.Of(SymbolicCircuit.WholeModel(graph), "every edge");
        var ablateAll = kept.Select(m => m with { Positions = TokenPositions.All, Ablate = AblatedSet.Circuit }).ToArray();
        var ablated = Evaluator.Run(setup.Request(ablateAll, metrics, circuit: everything, cache: cache));
        return new CircuitVsAblated(withCircuit.Rows, ablated, withCircuit.FullModel) { Model = setup.Label };
    }

    /// <summary>
    /// The robustness report (README, "The robustness report") on a setup: the grid of methodologies, ranked, with the
    /// sensitivity summary. <paramref name="metric"/> null: logit difference recovered when the task has answer
    /// tokens, else the task's metric.
    /// </summary>
    public static RobustnessReport Robustness(FigureSetup setup, MetricKind? metric = null, ReportGrid? grid = null)
    {
        var methodologies = RobustnessReport.Methodologies(grid ?? new ReportGrid(), setup.Circuit, setup.Task.PaperMean);
        var rankBy = metric ?? (setup.Parts[0].HasTokenAnswers ? MetricKind.LogitDiffRecovered : MetricKind.Parse(setup.Task.PaperMetric));
        var metrics = rankBy == MetricKind.LogitDiffRecovered ? new[] { rankBy, MetricKind.LogitDiffRecoveredOfMeans } : new[] { rankBy };
        var result = Evaluator.RunWithBaseline(setup.Request(methodologies, metrics));
        return RobustnessReport.Build(setup.Task.Name, setup.Circuit.Name, setup.ModelName, rankBy, result, methodologies, setup.Seed, randomWeights: setup.RandomWeights is not null);
    }

    /// <summary>
    /// The robustness report of a grid already evaluated (Figure 3's, or any methodologies over one circuit): medians,
    /// spreads and how far each choice moves the median, without running the model again.
    /// </summary>
    /// <param name="metric">The metric to report on; null: logit difference recovered.</param>
    public static RobustnessReport GridReport(FigureSetup setup, EvaluationResult result, MetricKind? metric = null)
    {
        metric ??= MetricKind.LogitDiffRecovered;
        var methodologies = result.Rows.Where(r => r.Metric == metric).Select(r => r.Methodology).Distinct().ToList();
        return RobustnessReport.Build(setup.Task.Name, setup.Circuit.Name, setup.ModelName, metric, result, methodologies, setup.Seed);
    }

    /// <summary>
    /// One line per choice the grid varies (component, token positions, ablation value): how far the median moves here,
    /// whether that is at least <paramref name="threshold"/> points (the effect is visible), and what the paper found
    /// (<paramref name="paper"/>, by factor name as in <see cref="FactorEffect.Factor"/>). The numbers come from the run.
    /// </summary>
    public static IReadOnlyList<string> CompareWithPaper(RobustnessReport report, IReadOnlyDictionary<string, string> paper, double threshold = 10)
    {
        var lines = new List<string>();
        foreach (var (factor, title) in new[] { ("component", "Nodes vs edges"), ("token positions", "Specific vs all positions"), ("ablation value", "Resample vs mean") })
        {
            var effect = report.Sensitivity.Factors.FirstOrDefault(f => f.Factor == factor);
            string here = effect is null
                ? "not varied here"
                : $"the median moves by {F(effect.MeanShift)} points on average, up to {F(effect.MaxShift)} ({effect.LargestSwitch}): " +
                  (effect.MaxShift >= threshold ? $"a difference of at least {F(threshold)} points, as in the paper" : $"under {F(threshold)} points, so not reproduced here");
            lines.Add($"{title}: {here}." + (paper.TryGetValue(factor, out var p) ? $" Paper: {p}." : ""));
        }
        return lines;
    }

    /// <summary>
    /// Figure 10's comparison in words, from the run: per ablation value, the share of prompts whose answer beats the wrong
    /// candidates for the ablated model, the circuit and the full model, next to the paper's values (spec A.4).
    /// </summary>
    public static IReadOnlyList<string> CompareCircuitWithAblatedModel(CircuitVsAblated data, double chance)
    {
        var metric = MetricKind.CorrectVsCandidatesPercent;
        double Mean(IEnumerable<double> values) => values.DefaultIfEmpty(double.NaN).Average();
        double full = Mean(data.FullModel.Where(r => r.Metric == metric).Select(r => r.Value));
        var lines = new List<string>();
        foreach (var value in data.Circuit.Where(r => r.Metric == metric).Select(r => r.Methodology.Value).Distinct())
        {
            double circuit = Mean(data.Circuit.Where(r => r.Metric == metric && r.Methodology.Value == value).Select(r => r.Value));
            double ablated = Mean(data.AblatedModel.Where(r => r.Metric == metric && r.Methodology.Value == value).Select(r => r.Value));
            string paper = value == AblationValue.Resample ? "ablated 0%, circuit ≈0.5%, full model 100%" : "ablated ≈32.5% (chance), circuit ≈77.5%, full model 100%";
            lines.Add($"{value.Legend}: ablated model {F(ablated)}%, circuit {F(circuit)}%, full model {F(full)}% (chance {F(chance)}%); " +
                      $"the circuit is {F(circuit - ablated)} points above the ablated model. Paper: {paper}.");
        }
        return lines;
    }

    static string F(double x) => x.ToString(Math.Abs(x) >= 100 ? "F0" : "F1", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// Section 5 (spec A.5, "sanity values"): each Tracr ground truth kept and the rest ablated with zero and with
    /// resample values, at every position; MSE for X-Proportion, KL for Reverse.
    /// </summary>
    public static IReadOnlyList<TracrAblation> TracrGroundTruths(int prompts = 200, int seed = 0, IProgress<WorkProgress>? progress = null, FigureParameters? parameters = null)
    {
        var (_, dtype) = (parameters ??= new FigureParameters()).Validate();
        var result = new List<TracrAblation>();
        foreach (var (task, metric) in new[] { ("tracr-xproportion", MetricKind.Mse), ("tracr-reverse", MetricKind.Kl) })
        {
            using var loaded = Checkpoints.ModelLoader.LoadWithTokenizer(task, new Checkpoints.LoadOptions { Device = parameters.Device, DType = dtype });
            var definition = Tasks.KnownTasks.Get(task);
            var parts = FigureSetup.PrepareParts(definition, loaded, seed, prompts);
            foreach (var variant in new[] { "ours", "theirs" })
            {
                var circuit = CircuitChoice.Parse($"{task}-{variant}");
                var methodologies = new[] { AblationValue.Zero, AblationValue.Resample }
                    .Select(v => new Methodology { Component = Component.Edge, Value = v, Positions = TokenPositions.All, Ablate = AblatedSet.Complement }).ToArray();
                var rows = Evaluator.Run(new EvaluationRequest
                {
                    Model = loaded.Model, Task = definition, Parts = parts, Circuit = circuit, Methodologies = methodologies,
                    Metrics = new[] { metric }, BatchSize = parameters.BatchSize ?? definition.DefaultBatchSize, Progress = progress,
                });
                result.Add(new TracrAblation(task, circuit.Name, metric, rows));
            }
        }
        return result;
    }
}
